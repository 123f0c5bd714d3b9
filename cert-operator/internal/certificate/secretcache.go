package certificate

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
)

// secretFacts keeps, for each of our Secrets in the informer's cache, what the decisions read
// of its data — which of tls.crt, tls.key and ca.crt are present, the leaf's validity and
// serial, the roots in ca.crt and to which of them it chains up, and whether the private key
// is the leaf's — while the cached Secret itself keeps no data at all. The cache therefore
// holds no private key and no leaf, and its size does not follow the key and chain sizes: the
// issuing and root CAs, and the roots of a ca.crt with their fingerprints, are kept once per
// CA rather than once per Secret.
//
// A cached Secret is a stripped copy: anything that writes a Secret reads the live object
// first.
type secretFacts struct {
	mu    sync.RWMutex
	facts map[types.UID]*dataFacts
	// cas interns the CA certificates found in Secrets, by the SHA-256 of their DER: every
	// Secret of a CA shares one parsed copy.
	cas map[[sha256.Size]byte]*x509.Certificate
	// trusts interns the contents of ca.crt (its roots and their fingerprints), by the
	// concatenated SHA-256 of the roots' DER: every Secret of a CA shares one, during a root
	// rotation two (the bundle before and after).
	trusts map[string]*trustFacts
}

// trustFacts is what a ca.crt holds: its certificates, in order, and their fingerprints.
type trustFacts struct {
	roots []*x509.Certificate
	// ordered are the fingerprints of roots in their order; sorted are contract.Fingerprints.
	ordered, sorted []string
}

// dataFacts is what a Secret's data says, as far as the decisions need it.
type dataFacts struct {
	// resourceVersion is the version of the Secret the facts were read from.
	resourceVersion string
	// present says which values of dataKeys are not empty (the decisions read no more of
	// them than that, and what the facts below say).
	present [len(dataKeys)]bool
	// leaf is what the decisions read of the first certificate of tls.crt (nil when none).
	leaf *leafFacts
	// intermediates are the interned rest of tls.crt, trust the interned content of ca.crt
	// (nil when it has none).
	intermediates []*x509.Certificate
	trust         *trustFacts
	// keyPublic is the public half of tls.key when it is not the leaf's (nil when it is).
	keyPublic crypto.PublicKey
	// keyIsLeafs says tls.key holds the leaf's private key.
	keyIsLeafs bool
	// certErr, keyErr and caErr are the parse errors of tls.crt, tls.key and ca.crt.
	certErr, keyErr, caErr error
}

// leafFacts is what the decisions read of a leaf certificate: its validity, its serial and
// to which of the roots in ca.crt it chains up. The chain is checked by the first sync that
// reads the facts (so that a restart checks every Secret's chain on the workers, in
// parallel, rather than in the informer's one goroutine); until then der keeps the leaf.
type leafFacts struct {
	notBefore, notAfter time.Time
	serial              *big.Int
	// der is the leaf's DER while the chain is unchecked; nil after.
	der []byte
	// chainVerified has bit i set when the leaf chains to the i-th root of ca.crt, chainErr
	// is pki.VerifyChain's failure for the first root it does not chain to; both once der is
	// nil.
	chainVerified uint64
	chainErr      error
}

// cachedValue stands, in a cached view's data, for a value that is present: the cache keeps
// none.
var cachedValue = []byte("(not kept in the cache)")

// dataKeys are the data keys the decisions look at.
var dataKeys = [...]string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, contract.TrustKey}

func newSecretFacts() *secretFacts {
	return &secretFacts{facts: map[types.UID]*dataFacts{}, cas: map[[sha256.Size]byte]*x509.Certificate{},
		trusts: map[string]*trustFacts{}}
}

// transform is the Secret informer's transform: it drops managedFields and, from each of our
// Secrets, the data, keeping the facts the decisions read.
func (f *secretFacts) transform(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return stripManagedFields(obj)
	}
	if _, err := stripManagedFields(s); err != nil {
		return nil, err
	}
	s.Type = corev1.SecretType(interned.get(string(s.Type)))
	if _, ours := secret.Owner(s); !ours {
		return s, nil
	}
	f.mu.RLock()
	known := f.facts[s.UID]
	f.mu.RUnlock()
	if known != nil && known.resourceVersion == s.ResourceVersion && s.Data == nil {
		return s, nil // already transformed
	}
	d := f.read(s)
	s.Data, s.StringData = nil, nil
	f.mu.Lock()
	f.facts[s.UID] = d
	f.mu.Unlock()
	return s, nil
}

// read parses the data of s into facts.
func (f *secretFacts) read(s *corev1.Secret) *dataFacts {
	parsed := policy.ParseData(s)
	d := &dataFacts{resourceVersion: s.ResourceVersion, certErr: parsed.CertErr, keyErr: parsed.KeyErr, caErr: parsed.CAErr}
	for i, k := range dataKeys {
		if v := s.Data[k]; len(v) > 0 {
			d.present[i] = true
		}
	}
	if parsed.Leaf != nil {
		d.leaf = &leafFacts{notBefore: parsed.Leaf.NotBefore, notAfter: parsed.Leaf.NotAfter,
			serial: parsed.Leaf.SerialNumber, der: parsed.Leaf.Raw}
		for _, c := range parsed.Intermediates {
			d.intermediates = append(d.intermediates, f.intern(c))
		}
	}
	if len(parsed.Roots) > 0 {
		d.trust = f.internTrust(parsed.Roots)
	}
	if parsed.Key != nil {
		if parsed.Leaf != nil && pki.PublicKeysEqual(parsed.Key.Public(), parsed.Leaf.PublicKey) {
			d.keyIsLeafs = true
		} else {
			d.keyPublic = parsed.Key.Public()
		}
	}
	return d
}

// intern returns the shared copy of CA certificate c.
func (f *secretFacts) intern(c *x509.Certificate) *x509.Certificate {
	sum := sha256.Sum256(c.Raw)
	f.mu.Lock()
	defer f.mu.Unlock()
	if known, ok := f.cas[sum]; ok {
		return known
	}
	f.cas[sum] = c
	return c
}

// internTrust returns the shared facts of a ca.crt holding roots.
func (f *secretFacts) internTrust(roots []*x509.Certificate) *trustFacts {
	key := make([]byte, 0, len(roots)*sha256.Size)
	for _, r := range roots {
		sum := sha256.Sum256(r.Raw)
		key = append(key, sum[:]...)
	}
	f.mu.RLock()
	known, ok := f.trusts[string(key)]
	f.mu.RUnlock()
	if ok {
		return known
	}
	t := &trustFacts{sorted: contract.Fingerprints(roots)}
	for _, r := range roots {
		t.roots = append(t.roots, f.intern(r))
		t.ordered = append(t.ordered, contract.Fingerprint(r))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if known, ok := f.trusts[string(key)]; ok {
		return known
	}
	f.trusts[string(key)] = t
	return t
}

// forget drops the facts of a deleted Secret.
func (f *secretFacts) forget(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if s, ok := obj.(*corev1.Secret); ok {
		f.mu.Lock()
		delete(f.facts, s.UID)
		f.mu.Unlock()
	}
}

// data returns, for the cached Secret s, a copy whose data holds cachedValue for each of
// tls.crt, tls.key and ca.crt that is not empty (so that what is present shows), and its data as the
// decisions read it (a view, see policy.Data); false when the facts of that version of s are
// not known (the cache and the facts are updated one after the other, so a sync can fall
// between): then read the live Secret.
func (f *secretFacts) data(s *corev1.Secret) (*corev1.Secret, policy.Data, bool) {
	f.mu.RLock()
	d := f.facts[s.UID]
	f.mu.RUnlock()
	if d == nil || d.resourceVersion != s.ResourceVersion {
		return nil, policy.Data{}, false
	}
	if d.trust != nil && len(d.trust.roots) > maxCheckedRoots {
		return nil, policy.Data{}, false // more roots than the verdicts record: decide on the live Secret
	}
	view := *s
	view.Data = map[string][]byte{}
	for i, k := range dataKeys {
		if d.present[i] {
			view.Data[k] = cachedValue
		}
	}
	out := policy.Data{Intermediates: d.intermediates, CertErr: d.certErr, KeyErr: d.keyErr, CAErr: d.caErr}
	if d.trust != nil {
		out.Roots, out.RootFingerprints = d.trust.roots, d.trust.sorted
		out = out.WithRootFingerprints(d.trust.ordered)
	}
	if d.leaf != nil {
		out.Leaf = &x509.Certificate{NotBefore: d.leaf.notBefore, NotAfter: d.leaf.notAfter,
			SerialNumber: d.leaf.serial, PublicKey: leafKey{}}
		if d.trust != nil {
			out.ChainChecked = true
			out.ChainVerified, out.ChainErr = f.chainVerdict(d)
		}
	}
	switch {
	case d.keyIsLeafs && out.Leaf != nil:
		out.Key = publicOnly{leafKey{}}
	case d.keyPublic != nil:
		out.Key = publicOnly{d.keyPublic}
	}
	return &view, out, true
}

// chainVerdict returns to which roots of ca.crt the leaf of d chains up (bit i for the i-th)
// and the failure for the first it does not chain to, checking it the first time and then
// dropping the leaf's DER. A leaf that no longer parses counts as chaining to none.
func (f *secretFacts) chainVerdict(d *dataFacts) (uint64, error) {
	f.mu.RLock()
	der, verified, verdict := d.leaf.der, d.leaf.chainVerified, d.leaf.chainErr
	f.mu.RUnlock()
	if der == nil {
		return verified, verdict
	}
	verified, verdict = 0, nil
	leaf, err := x509.ParseCertificate(der)
	for i, root := range d.trust.roots {
		if err == nil {
			if verr := pki.VerifyChain(leaf, d.intermediates, root); verr != nil {
				if verdict == nil {
					verdict = verr
				}
				continue
			}
			verified |= 1 << i
		} else if verdict == nil {
			verdict = err
		}
	}
	f.mu.Lock()
	d.leaf.der, d.leaf.chainVerified, d.leaf.chainErr = nil, verified, verdict
	f.mu.Unlock()
	return verified, verdict
}

// maxCheckedRoots is how many roots of a ca.crt a view records verdicts for.
const maxCheckedRoots = 64

// size returns how many Secrets facts are kept for (tests).
func (f *secretFacts) size() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.facts)
}

// publicOnly is a crypto.Signer that knows only the public half of a key: the decisions
// compare public keys and never sign, and the cache keeps no private key.
type publicOnly struct{ pub crypto.PublicKey }

// Public returns the public key.
func (p publicOnly) Public() crypto.PublicKey { return p.pub }

// Sign always fails: the private key is not kept.
func (publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("the cached Secret keeps no private key")
}

// leafKey stands, in a cached view, for the leaf's public key, which the facts do not keep:
// the view's leaf carries it, and so does its key when the key is the leaf's (checked when
// the Secret was read), so the two compare equal exactly then; a key that is not the leaf's
// is its real public half, which compares unequal to it.
type leafKey struct{}

// Equal reports whether x is also the leaf's key.
func (leafKey) Equal(x crypto.PublicKey) bool {
	_, ok := x.(leafKey)
	return ok
}
