// Package testpki makes small CA hierarchies and leaves in memory for unit tests.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// Pair is a certificate and its key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// serial counts up so every certificate made here has its own serial.
var serial int64 = 1000

// Root returns a self-signed root CA called cn.
func Root(t testing.TB, cn string) Pair {
	t.Helper()
	return sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, newKey(t), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// CrossSigned returns the certificate of root signed by other: root's subject and key, other's
// signature, as a root rotation makes it so that clients trusting only the old root (other)
// accept chains under the new one (root).
func CrossSigned(t testing.TB, root, other Pair) Pair {
	t.Helper()
	return sign(t, &x509.Certificate{
		Subject: root.Cert.Subject, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, &other, root.Key, time.Now().Add(-time.Hour), time.Now().Add(23*time.Hour))
}

// Intermediate returns an issuing CA called cn signed by parent.
func Intermediate(t testing.TB, parent Pair, cn string) Pair {
	t.Helper()
	return sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, &parent, newKey(t), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// Leaf returns a server certificate for dnsName signed by parent with key (a new key when nil),
// valid from notBefore to notAfter.
func Leaf(t testing.TB, parent Pair, dnsName string, key crypto.Signer, notBefore, notAfter time.Time) Pair {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	return sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &parent, key, notBefore, notAfter)
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, tmpl *x509.Certificate, parent *Pair, key crypto.Signer, notBefore, notAfter time.Time) Pair {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Pair{Cert: cert, Key: key}
}
