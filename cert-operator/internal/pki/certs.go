package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// pemTypeCertificate is the PEM block type of an X.509 certificate.
const pemTypeCertificate = "CERTIFICATE"

// ParseCertificates reads every CERTIFICATE block of data, in order; it fails on data holding
// none, or on a block that does not parse.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemTypeCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return certs, nil
}

// EncodeCertificates returns certs as concatenated PEM blocks.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: c.Raw})...)
	}
	return out
}

// Fingerprint returns the SHA-256 of cert's DER as lowercase hex, the form the
// CertificateAuthority status publishes (apis/contract, shared with the ca-operator).
func Fingerprint(cert *x509.Certificate) string { return contract.Fingerprint(cert) }

// FormatSerial returns serial as colon-separated lowercase hex bytes, as Vault writes it
// (apis/contract).
func FormatSerial(serial *big.Int) string { return contract.Serial(serial) }

// VerifyChain checks that leaf chains up to root through intermediates, at a time inside every
// certificate's validity so that an expired (or not yet valid) certificate is not mistaken for a
// foreign one.
func VerifyChain(leaf *x509.Certificate, intermediates []*x509.Certificate, root *x509.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	from, until := leaf.NotBefore, leaf.NotAfter
	for _, c := range append([]*x509.Certificate{root}, intermediates...) {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	at := from.Add(until.Sub(from) / 2)
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// Lifetime returns how long cert is valid in total.
func Lifetime(cert *x509.Certificate) time.Duration {
	return cert.NotAfter.Sub(cert.NotBefore)
}
