// Package contract is the one home of what the ca-operator publishes about a
// CertificateAuthority and what the cert-operator, the kubectl plugin, the tests and the bench
// read back: how a CA certificate is named in status (SHA-256 fingerprint, serial form), how PEM
// is read and written, where a CA's trust is published, and the status a Ready CA carries.
// The operators cooperate only through Kubernetes objects; this package is how both sides
// spell those objects, so the forms cannot drift apart.
package contract

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

const (
	// ManagedByValue is the value of v1alpha1.LabelManagedBy on every object a clusterpki
	// operator creates (the ca-operator's ConfigMaps, the cert-operator's Secrets).
	ManagedByValue = "clusterpki"
	// TrustKey is the key of the PEM trust (the CA's root) in the ConfigMap the ca-operator
	// publishes and in every Secret the cert-operator writes.
	TrustKey = "ca.crt"
	// ReasonProvisioned is the reason of a CertificateAuthority's Ready=True condition: its
	// mounts, CAs and roles are in place, and Certificates may be issued from it.
	ReasonProvisioned = "Provisioned"
)

// ConfigMapName returns the name of the ConfigMap in which the ca-operator publishes the root
// of the CertificateAuthority called caName.
func ConfigMapName(caName string) string { return caName + "-ca" }

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

// pemCertificate is the PEM block type of an X.509 certificate.
const pemCertificate = "CERTIFICATE"

// ParseCertificates reads every CERTIFICATE block of data, in order, skipping other blocks; it
// fails on data holding none, or on a block that does not parse.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// ParseCertificate returns the first certificate of the PEM data.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// EncodeCertificates returns certs as concatenated PEM blocks.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw})...)
	}
	return out
}

// CertificateStatus describes the CA certificate cert, Vault issuer issuerID (may be empty),
// as the CertificateAuthority status publishes it.
func CertificateStatus(issuerID string, cert *x509.Certificate) *v1alpha1.CACertificateStatus {
	return &v1alpha1.CACertificateStatus{
		IssuerID:          issuerID,
		SerialNumber:      Serial(cert.SerialNumber),
		FingerprintSHA256: Fingerprint(cert),
		NotBefore:         metav1.NewTime(cert.NotBefore.UTC()),
		NotAfter:          metav1.NewTime(cert.NotAfter.UTC()),
	}
}

// ReadyCA is what a provisioned CertificateAuthority's status says: its mounts, its root and
// issuing CA certificates and the roles Certificates may name.
type ReadyCA struct {
	// RootMount and IssuingMount are the CA's Vault mounts (pkg/pkipath).
	RootMount, IssuingMount string
	// Root and Issuing are the root and the current issuing CA certificate.
	Root, Issuing *x509.Certificate
	// RootIssuerID and IssuingIssuerID are their Vault issuer IDs (may be empty).
	RootIssuerID, IssuingIssuerID string
	// Roles are the names of the issuance roles in the issuing mount.
	Roles []string
	// Message is the Ready condition's message (default "provisioned").
	Message string
}

// Status returns the status of a CertificateAuthority at generation that is Ready for r, with
// the ConfigMap of caName, as the ca-operator publishes it. Tests and the bench use it to stand
// in for the ca-operator; the ca-operator itself builds the same fields as it converges.
func (r ReadyCA) Status(caName string, generation int64, now metav1.Time) v1alpha1.CertificateAuthorityStatus {
	msg := r.Message
	if msg == "" {
		msg = "provisioned"
	}
	st := v1alpha1.CertificateAuthorityStatus{
		ObservedGeneration: generation,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: ReasonProvisioned, Message: msg, ObservedGeneration: generation, LastTransitionTime: now}},
		RootMount:     r.RootMount,
		IssuingMount:  r.IssuingMount,
		ConfigMapName: ConfigMapName(caName),
	}
	for _, role := range r.Roles {
		st.Roles = append(st.Roles, v1alpha1.ProvisionedRole{Name: role,
			SignPath: r.IssuingMount + "/sign/" + role, RevokePath: r.IssuingMount + "/revoke"})
	}
	if r.Root != nil {
		st.Root = CertificateStatus(r.RootIssuerID, r.Root)
	}
	if r.Issuing != nil {
		st.Issuing = CertificateStatus(r.IssuingIssuerID, r.Issuing)
	}
	return st
}
