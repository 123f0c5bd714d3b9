package contract

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// The trust contract of a root rotation. The ca-operator publishes, in a CertificateAuthority's
// status:
//   - root: the root that signs now (the root mount's default issuer). During a rotation it
//     turns from the old root to the new one when issuance moves (phase Moving).
//   - trustBundle: the PEM of every root a client must trust now (one root, or during a
//     rotation from Trusting until Retiring the old and the new), the ConfigMap's ca.crt.
//   - rootRotation: the phase, the old and the new root, the counts.
//
// The cert-operator reads root (whose chains it accepts as current) and trustBundle (which it
// writes as every Secret's ca.crt, checked with TrustBundle), and reports in each Certificate's
// status the root its certificate was issued under (rootFingerprintSHA256) and the roots its
// Secret's ca.crt holds (trustedRootsSHA256, Fingerprints of them). The ca-operator counts
// Certificates as trusting and moved from those two fields alone.

// TrustBundle returns the roots of ca's published trust bundle (status.trustBundle), checked
// against the rest of its status: every certificate must be a self-signed CA whose fingerprint
// is status.root's or, during a rotation, the old or the new root's; status.root's must be one
// of them. It returns nil and no error when status publishes no bundle (a ca-operator that
// predates it): trust is then status.root alone, as the sign response carries it.
func TrustBundle(ca *v1alpha1.CertificateAuthority) ([]*x509.Certificate, error) {
	st := &ca.Status
	if st.TrustBundle == "" {
		return nil, nil
	}
	certs, err := ParseCertificates([]byte(st.TrustBundle))
	if err != nil {
		return nil, fmt.Errorf("status.trustBundle: %w", err)
	}
	allowed := map[string]bool{}
	for _, c := range []*v1alpha1.CACertificateStatus{st.Root, rotationRoot(st, true), rotationRoot(st, false)} {
		if c != nil && c.FingerprintSHA256 != "" {
			allowed[c.FingerprintSHA256] = true
		}
	}
	seenRoot := false
	for _, c := range certs {
		fp := Fingerprint(c)
		if !allowed[fp] {
			return nil, fmt.Errorf("status.trustBundle holds a certificate (%s) that is neither status.root nor a root of status.rootRotation", fp)
		}
		if !IsSelfSigned(c) || !c.IsCA {
			return nil, fmt.Errorf("status.trustBundle holds a certificate (%s) that is not a self-signed CA", fp)
		}
		if st.Root != nil && fp == st.Root.FingerprintSHA256 {
			seenRoot = true
		}
	}
	if st.Root != nil && !seenRoot {
		return nil, fmt.Errorf("status.trustBundle does not hold status.root (%s)", st.Root.FingerprintSHA256)
	}
	return certs, nil
}

// rotationRoot returns the old (old=true) or the new root of st's rotation, nil when none runs.
func rotationRoot(st *v1alpha1.CertificateAuthorityStatus, old bool) *v1alpha1.CACertificateStatus {
	if st.RootRotation == nil {
		return nil
	}
	if old {
		return st.RootRotation.OldRoot
	}
	return st.RootRotation.NewRoot
}

// RootRotationRunning reports whether ca has a root rotation under way (a phase before
// Completed).
func RootRotationRunning(ca *v1alpha1.CertificateAuthority) bool {
	r := ca.Status.RootRotation
	return r != nil && r.Phase != "" && r.Phase != v1alpha1.RootRotationCompleted
}

// Fingerprints returns the sorted fingerprints of certs, without repeats: the form of a
// Certificate's status.trustedRootsSHA256.
func Fingerprints(certs []*x509.Certificate) []string {
	fps := make([]string, 0, len(certs))
	for _, c := range certs {
		fps = append(fps, Fingerprint(c))
	}
	slices.Sort(fps)
	return slices.Compact(fps)
}

// SameTrust reports whether a and b hold the same roots, in any order.
func SameTrust(a, b []*x509.Certificate) bool {
	return slices.Equal(Fingerprints(a), Fingerprints(b))
}

// IsSelfSigned reports whether cert is signed by its own key (a root), not merely named after
// itself: a root's certificate cross-signed by another root has the root's subject and key
// but the other root's signature.
func IsSelfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(cert) == nil
}

// ChainRoots splits a CA chain as Vault returns it (ca_chain: the issuing CA, then what leads
// to the roots; during a root rotation also the cross-signed root and both roots) into the
// certificates a leaf presents after itself (intermediates: every element not self-signed, in
// order) and the roots (self-signed).
func ChainRoots(chain []*x509.Certificate) (intermediates, roots []*x509.Certificate) {
	for _, c := range chain {
		if IsSelfSigned(c) {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	return intermediates, roots
}
