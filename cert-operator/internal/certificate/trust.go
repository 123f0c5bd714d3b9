package certificate

import (
	"crypto/x509"
	"sync"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// trustBundles keeps, per CertificateAuthority, its trust bundle as contract.TrustBundle
// parsed and checked it, for as long as the status fields it was read from stay the same:
// every sync of every Certificate of a CA reads it, and parsing the PEM each time would cost a
// restart of 10,000 Certificates 20,000 certificate parses for two distinct answers.
type trustBundles struct {
	mu sync.Mutex
	m  map[string]*trustBundle
}

// trustBundle is a CA's parsed trust bundle and the status fields it was read from.
type trustBundle struct {
	source, root, oldRoot, newRoot string
	roots                          []*x509.Certificate
	fingerprints                   []string
	err                            error
}

// get returns ca's trust bundle (nil when its status publishes none), its fingerprints, and
// why it is refused, if it is.
func (t *trustBundles) get(ca *v1alpha1.CertificateAuthority) ([]*x509.Certificate, []string, error) {
	key := ca.Namespace + "/" + ca.Name
	src, root, oldRoot, newRoot := ca.Status.TrustBundle, rootFingerprint(ca), "", ""
	if r := ca.Status.RootRotation; r != nil {
		if r.OldRoot != nil {
			oldRoot = r.OldRoot.FingerprintSHA256
		}
		if r.NewRoot != nil {
			newRoot = r.NewRoot.FingerprintSHA256
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.m[key]; b != nil && b.source == src && b.root == root && b.oldRoot == oldRoot && b.newRoot == newRoot {
		return b.roots, b.fingerprints, b.err
	}
	b := &trustBundle{source: src, root: root, oldRoot: oldRoot, newRoot: newRoot}
	b.roots, b.err = contract.TrustBundle(ca)
	if b.err == nil && b.roots != nil {
		b.fingerprints = contract.Fingerprints(b.roots)
	}
	if t.m == nil {
		t.m = map[string]*trustBundle{}
	}
	t.m[key] = b
	return b.roots, b.fingerprints, b.err
}

// forget drops what is kept for the CertificateAuthority obj (deleted).
func (t *trustBundles) forget(ca *v1alpha1.CertificateAuthority) {
	t.mu.Lock()
	delete(t.m, ca.Namespace+"/"+ca.Name)
	t.mu.Unlock()
}
