package ca

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// parseCertificate decodes the first PEM certificate in data.
func parseCertificate(data string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(data))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// Fingerprint returns the lowercase hex SHA-256 of a certificate's DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// SerialString formats a certificate serial number as colon-separated hex, as Vault does.
func SerialString(cert *x509.Certificate) string {
	h := fmt.Sprintf("%x", cert.SerialNumber)
	if len(h)%2 == 1 {
		h = "0" + h
	}
	parts := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// certStatus describes a CA certificate for the status.
func certStatus(issuerID string, cert *x509.Certificate) *v1alpha1.CACertificateStatus {
	return &v1alpha1.CACertificateStatus{
		IssuerID:          issuerID,
		SerialNumber:      SerialString(cert),
		FingerprintSHA256: Fingerprint(cert),
		NotBefore:         metav1.NewTime(cert.NotBefore.UTC()),
		NotAfter:          metav1.NewTime(cert.NotAfter.UTC()),
	}
}

// encodePEM returns the PEM encoding of a certificate.
func encodePEM(cert *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}
