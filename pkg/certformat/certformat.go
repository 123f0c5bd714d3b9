// Package certformat is the one home of how clusterpki writes a certificate's identity: the
// SHA-256 fingerprint a CertificateAuthority's status publishes and the serial number form
// Vault uses. Both operators and the kubectl plugin import it, so the forms cannot drift apart.
package certformat

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// Fingerprint returns the SHA-256 of cert's DER as lowercase hex, the form the
// CertificateAuthority status publishes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Serial returns serial as colon-separated lowercase hex bytes, as Vault writes it.
func Serial(serial *big.Int) string {
	b := serial.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}
