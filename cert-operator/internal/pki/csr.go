package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
)

// Subject is what a certificate is for: its common name and subject alternative names.
type Subject struct {
	CommonName string
	DNSNames   []string
	IPs        []string
	URIs       []string
}

// CreateCSR returns a PEM certificate signing request for subject, signed by key.
func CreateCSR(subject Subject, key crypto.Signer) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: subject.CommonName},
		DNSNames: subject.DNSNames,
	}
	for _, s := range subject.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	for _, s := range subject.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URI: %w", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
