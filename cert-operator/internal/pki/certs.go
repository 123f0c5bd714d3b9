package pki

import (
	"crypto/x509"
	"time"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// ParseCertificates is contract.ParseCertificates.
//
// Deprecated: use contract.ParseCertificates; kept only while internal/policy still calls it
// (issue 14).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	return contract.ParseCertificates(data)
}

// EncodeCertificates is contract.EncodeCertificates.
//
// Deprecated: use contract.EncodeCertificates; kept only while internal/policy's tests still
// call it (issue 14).
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	return contract.EncodeCertificates(certs...)
}

// Fingerprint is contract.Fingerprint.
//
// Deprecated: use contract.Fingerprint; kept only while internal/policy still calls it
// (issue 14).
func Fingerprint(cert *x509.Certificate) string { return contract.Fingerprint(cert) }

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
