package ca

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
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

// Fingerprint returns the lowercase hex SHA-256 of a certificate's DER encoding (apis/contract,
// shared with the cert-operator).
func Fingerprint(cert *x509.Certificate) string { return contract.Fingerprint(cert) }

// SerialString formats a certificate serial number as colon-separated hex, as Vault does
// (apis/contract).
func SerialString(cert *x509.Certificate) string { return contract.Serial(cert.SerialNumber) }

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
