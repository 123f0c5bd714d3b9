// Package policy decides whether a Certificate needs a new certificate: a chain of small pure
// checks over the Certificate, its Secret and its CA's current root, each saying why (a reason
// and a message) when it triggers.
package policy

import (
	"crypto"
	"crypto/x509"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
)

// Input is everything a check looks at; build it with NewInput.
type Input struct {
	// Certificate is the object being synced.
	Certificate *v1alpha1.Certificate
	// Secret is the Secret named spec.secretName, nil when there is none.
	Secret *corev1.Secret
	// RootFingerprint is the SHA-256 fingerprint of the CA's current root.
	RootFingerprint string
	// SpecHash is secret.SpecHash of the Certificate's spec now.
	SpecHash string
	// Now is the time the decision is made at.
	Now time.Time

	// Data is the Secret's content, parsed once for all checks.
	Data Data
}

// Data is the parsed content of a Secret; a nil field comes with its error set (or the key
// missing from the Secret).
//
// Data read from the Secret cache (whose copies keep no data) is a view: Leaf then holds only
// NotBefore, NotAfter, SerialNumber and a PublicKey that compares equal to Key's exactly when
// the key is the leaf's, and ChainChecked says the chain was checked when the Secret was read,
// with ChainErr the outcome. Anything that writes or revokes decides again on the live Secret.
type Data struct {
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	Root          *x509.Certificate
	Key           crypto.Signer
	CertErr       error
	KeyErr        error
	CAErr         error
	// ChainChecked says ChainErr holds the outcome of pki.VerifyChain for Leaf, Intermediates
	// and Root, so NotIssuedByCA need not (cannot, for a view) verify signatures again.
	ChainChecked bool
	ChainErr     error
}

// VerifyChain returns whether d's leaf chains up to d's root through its intermediates: the
// outcome recorded in ChainErr when ChainChecked, otherwise checked now.
func (d Data) VerifyChain() error {
	if d.ChainChecked {
		return d.ChainErr
	}
	return pki.VerifyChain(d.Leaf, d.Intermediates, d.Root)
}

// NewInput returns the Input for cert and its Secret s (nil when absent), parsing the Secret.
func NewInput(cert *v1alpha1.Certificate, s *corev1.Secret, rootFingerprint string, now time.Time) Input {
	in := Input{Certificate: cert, Secret: s, RootFingerprint: rootFingerprint, Now: now}
	keySpec, err := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	if err == nil {
		in.SpecHash = secret.SpecHash(cert.Spec, keySpec.String())
	}
	if s != nil {
		in.Data = ParseData(s)
	}
	return in
}

// ParseData parses the certificate chain, private key and root of s.
func ParseData(s *corev1.Secret) Data {
	var d Data
	if raw := s.Data[corev1.TLSCertKey]; len(raw) > 0 {
		certs, err := contract.ParseCertificates(raw)
		if err != nil {
			d.CertErr = err
		} else {
			d.Leaf, d.Intermediates = certs[0], certs[1:]
		}
	}
	if raw := s.Data[corev1.TLSPrivateKeyKey]; len(raw) > 0 {
		d.Key, d.KeyErr = pki.ParsePrivateKey(raw)
	}
	if raw := s.Data[contract.TrustKey]; len(raw) > 0 {
		certs, err := contract.ParseCertificates(raw)
		if err != nil {
			d.CAErr = err
		} else {
			d.Root = certs[len(certs)-1]
		}
	}
	return d
}

// RenewalPolicy returns the renewal policy cert's spec asks for (an unparsable renewBefore,
// which the CRD's validation prevents, counts as unset).
func RenewalPolicy(cert *v1alpha1.Certificate) renewal.Policy {
	p := renewal.Policy{Percentage: cert.Spec.RenewBeforePercentage}
	if d, err := time.ParseDuration(cert.Spec.RenewBefore); err == nil {
		p.RenewBefore = d
	}
	return p
}

// RenewalTime returns when cert's certificate leaf is due for renewal: when its spec asks, but
// never sooner than renewal.ReissueFloor after the last issuance.
func RenewalTime(cert *v1alpha1.Certificate, leaf *x509.Certificate) time.Time {
	at := renewal.Schedule(leaf.NotBefore, leaf.NotAfter, RenewalPolicy(cert), cert.Namespace+"/"+cert.Name)
	if floor := renewal.NextIssuance(LastIssuance(cert, leaf), renewal.ReissueFloor); at.Before(floor) {
		return floor
	}
	return at
}

// LastIssuance returns when a certificate was last signed for cert, as far as the API server
// tells: the later of status.lastIssuanceTime and the notBefore of leaf, the certificate in the
// Secret (nil when there is none). notBefore is only a lower bound, since Vault back-dates it,
// but it keeps the floor when a status write was lost after the Secret was written.
func LastIssuance(cert *v1alpha1.Certificate, leaf *x509.Certificate) time.Time {
	var last time.Time
	if t := cert.Status.LastIssuanceTime; t != nil {
		last = t.Time
	}
	if leaf != nil && leaf.NotBefore.After(last) {
		last = leaf.NotBefore
	}
	return last
}
