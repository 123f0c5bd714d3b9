// Package policy decides whether a Certificate needs a new certificate: a chain of small pure
// checks over the Certificate, its Secret and its CA's current root, each saying why (a reason
// and a message) when it triggers.
package policy

import (
	"crypto"
	"crypto/x509"
	"errors"
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
	// RootFingerprint is the SHA-256 fingerprint of the CA's current root (status.root): the
	// root a certificate is issued under now.
	RootFingerprint string
	// Trust is the CA's trust bundle (contract.TrustBundle), the roots every Secret's ca.crt
	// must hold; nil when the CA publishes none, and the trust is then the current root alone.
	// Set it with WithTrust.
	Trust []*x509.Certificate
	// SpecHash is secret.SpecHash of the Certificate's spec now.
	SpecHash string
	// Now is the time the decision is made at.
	Now time.Time

	// Data is the Secret's content, parsed once for all checks.
	Data Data

	// trustFingerprints are contract.Fingerprints(Trust), computed by WithTrust.
	trustFingerprints []string
}

// WithTrust returns in with the CA's trust bundle (nil: the current root alone) and its
// fingerprints (contract.Fingerprints of bundle, passed in since the caller has them).
func (in Input) WithTrust(bundle []*x509.Certificate, fingerprints []string) Input {
	in.Trust, in.trustFingerprints = bundle, fingerprints
	return in
}

// TrustFingerprints returns the sorted fingerprints of the roots ca.crt must hold: the trust
// bundle's, or the current root's alone when the CA publishes no bundle.
func (in Input) TrustFingerprints() []string {
	if in.Trust == nil {
		return []string{in.RootFingerprint}
	}
	if in.trustFingerprints == nil {
		return contract.Fingerprints(in.Trust)
	}
	return in.trustFingerprints
}

// trustedRoots returns the roots a chain must verify against: the trust bundle, or without
// one the roots of ca.crt that are the current root (the sign response's root, which the
// operator wrote there; the CA's status keeps no certificate to compare with).
func (in Input) trustedRoots() []*x509.Certificate {
	if in.Trust != nil {
		return in.Trust
	}
	var roots []*x509.Certificate
	for i, c := range in.Data.Roots {
		if in.Data.rootFingerprint(i) == in.RootFingerprint {
			roots = append(roots, c)
		}
	}
	return roots
}

// Data is the parsed content of a Secret; a nil field comes with its error set (or the key
// missing from the Secret).
//
// Data read from the Secret cache (whose copies keep no data) is a view: Leaf then holds only
// NotBefore, NotAfter, SerialNumber and a PublicKey that compares equal to Key's exactly when
// the key is the leaf's, and ChainChecked says the chain was checked against each of Roots
// when the Secret was read, with ChainVerified and ChainErr the outcome. Anything that writes
// or revokes decides again on the live Secret.
type Data struct {
	Leaf          *x509.Certificate
	Intermediates []*x509.Certificate
	// Roots are the certificates of ca.crt, in order: one root, or during a root rotation the
	// roots of the trust bundle.
	Roots []*x509.Certificate
	// RootFingerprints are contract.Fingerprints(Roots): sorted, without repeats.
	RootFingerprints []string
	Key              crypto.Signer
	CertErr          error
	KeyErr           error
	CAErr            error
	// ChainChecked says ChainVerified and ChainErr hold the outcome of pki.VerifyChain for
	// Leaf, Intermediates and each of Roots (bit i set when the leaf chains to Roots[i];
	// ChainErr the failure for the first root it does not chain to), so the checks need not
	// (cannot, for a view) verify signatures again.
	ChainChecked  bool
	ChainVerified uint64
	ChainErr      error

	// rootFingerprints are the fingerprints of Roots, in Roots' order (computed when needed).
	rootFingerprints []string
}

// maxCheckedRoots is how many certificates of ca.crt a checked view can speak for (the bits
// of ChainVerified).
const maxCheckedRoots = 64

// rootFingerprint returns the fingerprint of d.Roots[i].
func (d Data) rootFingerprint(i int) string {
	if i < len(d.rootFingerprints) {
		return d.rootFingerprints[i]
	}
	return contract.Fingerprint(d.Roots[i])
}

// VerifyChainTo returns nil when d's leaf chains, through the intermediates in tls.crt, up to
// one of roots, and otherwise why not. On a checked view it answers from ChainVerified for the
// roots that ca.crt holds; a root that ca.crt does not hold counts as not chaining there (the
// cache reads the live Secret before deciding in that case, see CanVerify).
func (d Data) VerifyChainTo(roots []*x509.Certificate) error {
	if len(roots) == 0 {
		return errors.New("no root to verify against")
	}
	if !d.ChainChecked {
		var first error
		for _, r := range roots {
			err := pki.VerifyChain(d.Leaf, d.Intermediates, r)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return first
	}
	for _, r := range roots {
		if i := d.rootIndex(contract.Fingerprint(r)); i >= 0 && d.ChainVerified&(1<<i) != 0 {
			return nil
		}
	}
	if d.ChainErr == nil {
		return errors.New("the chain does not lead to any of the trusted roots")
	}
	return d.ChainErr
}

// CanVerify reports whether VerifyChainTo(roots) answers as the live Secret would: always for
// parsed data; for a checked view, when the leaf chains to a root of ca.crt that is among
// roots, or when every one of roots is in ca.crt (whose verdicts the view keeps).
func (d Data) CanVerify(roots []*x509.Certificate) bool {
	if !d.ChainChecked {
		return true
	}
	all := true
	for _, r := range roots {
		i := d.rootIndex(contract.Fingerprint(r))
		if i < 0 {
			all = false
		} else if d.ChainVerified&(1<<i) != 0 {
			return true
		}
	}
	return all
}

// rootIndex returns the index in Roots of the certificate with fingerprint fp, -1 when none
// (or when it lies beyond what ChainVerified records).
func (d Data) rootIndex(fp string) int {
	for i := range d.Roots {
		if i >= maxCheckedRoots {
			break
		}
		if d.rootFingerprint(i) == fp {
			return i
		}
	}
	return -1
}

// WithRootFingerprints returns d with the fingerprints of its Roots, in their order, already
// computed (the Secret cache keeps them, interned).
func (d Data) WithRootFingerprints(ordered []string) Data {
	d.rootFingerprints = ordered
	return d
}

// NewInput returns the Input for cert and its Secret s (nil when absent), parsing the Secret.
// The trust is the current root alone until WithTrust says otherwise.
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

// ParseData parses the certificate chain, private key and roots (ca.crt) of s.
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
			d.Roots = certs
			d.RootFingerprints = contract.Fingerprints(certs)
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
