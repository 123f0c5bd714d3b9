package pki

import (
	"crypto/x509"
	"time"
)

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
