package certificate

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
)

// The cache keeps facts, not the leaf: every decision on the cached view must be the one taken
// on the live Secret, whatever is wrong with it.
func TestCachedViewDecidesAsTheLiveSecret(t *testing.T) {
	root := testpki.Root(t, "root")
	issuing := testpki.Intermediate(t, root, "issuing")
	otherRoot := testpki.Root(t, "other root")
	otherIssuing := testpki.Intermediate(t, otherRoot, "other issuing")
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	leaf := testpki.Leaf(t, issuing, "web.example.com", nil, start, start.Add(30*time.Hour))
	foreignLeaf := testpki.Leaf(t, otherIssuing, "web.example.com", leaf.Key, start, start.Add(30*time.Hour))
	expired := testpki.Leaf(t, issuing, "web.example.com", nil, start.Add(-55*time.Minute), start.Add(-5*time.Minute))
	stranger := testpki.Leaf(t, issuing, "web.example.com", nil, start, start.Add(30*time.Hour))
	// A root rotation from root to newRoot: the new issuing CA's leaf carries the cross-signed
	// new root.
	newRoot := testpki.Root(t, "root")
	cross := testpki.CrossSigned(t, newRoot, root)
	newIssuing := testpki.Intermediate(t, newRoot, "issuing 2")
	moved := testpki.Leaf(t, newIssuing, "web.example.com", leaf.Key, start, start.Add(30*time.Hour))

	cert := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}, Role: "server",
			SecretName: "web-tls", CommonName: "web.example.com", TTL: "30h"},
		Status: v1alpha1.CertificateStatus{ObservedGeneration: 1},
	}
	spec, err := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	require.NoError(t, err)
	rootFP := contract.Fingerprint(root.Cert)
	buildWith := func(roots []testpki.Pair, under testpki.Pair, l testpki.Pair, chain ...testpki.Pair) *corev1.Secret {
		key, err := pki.EncodePrivateKey(l.Key)
		require.NoError(t, err)
		certs := contract.EncodeCertificates(l.Cert)
		for _, c := range chain {
			certs = append(certs, contract.EncodeCertificates(c.Cert)...)
		}
		var ca []byte
		for _, r := range roots {
			ca = append(ca, contract.EncodeCertificates(r.Cert)...)
		}
		s := secret.Build(cert, "c1", secret.Material{Certificate: certs, PrivateKey: key, CA: ca},
			secret.Provenance{SpecHash: secret.SpecHash(cert.Spec, spec.String()), RootFingerprint: contract.Fingerprint(under.Cert)})
		s.UID, s.ResourceVersion = "secret-uid", "7"
		return s
	}
	build := func(l testpki.Pair, chain ...testpki.Pair) *corev1.Secret {
		return buildWith([]testpki.Pair{root}, root, l, chain...)
	}
	pairs := func(p ...testpki.Pair) []testpki.Pair { return p }
	withKeyOf := func(s *corev1.Secret, other testpki.Pair) *corev1.Secret {
		key, err := pki.EncodePrivateKey(other.Key)
		require.NoError(t, err)
		s.Data[corev1.TLSPrivateKeyKey] = key
		return s
	}

	tests := map[string]struct {
		secret *corev1.Secret
		// statusRoot is the CA's status.root (zero: root), bundle its trust bundle (nil: none).
		statusRoot testpki.Pair
		bundle     []testpki.Pair
		reason     string // "" when nothing triggers
		// readsLive says the facts cannot answer for the bundle: the sync reads the live Secret.
		readsLive bool
	}{
		"Trusting: ca.crt of the old root only": {secret: build(leaf, issuing), bundle: pairs(root, newRoot),
			reason: policy.ReasonTrustOutdated},
		"Trusting: ca.crt holds the bundle": {secret: buildWith(pairs(newRoot, root), root, leaf, issuing), bundle: pairs(root, newRoot)},
		"Moving: a certificate of the old root": {secret: buildWith(pairs(root, newRoot), root, leaf, issuing),
			statusRoot: newRoot, bundle: pairs(root, newRoot), reason: policy.ReasonRootChanged},
		"Moving: a moved certificate": {secret: buildWith(pairs(root, newRoot), newRoot, moved, newIssuing, cross),
			statusRoot: newRoot, bundle: pairs(root, newRoot)},
		"Retiring: a moved certificate": {secret: buildWith(pairs(root, newRoot), newRoot, moved, newIssuing, cross),
			statusRoot: newRoot, bundle: pairs(newRoot), reason: policy.ReasonTrustOutdated},
		"Retiring: a certificate of the retired root": {secret: buildWith(pairs(root, newRoot), root, leaf, issuing),
			statusRoot: newRoot, bundle: pairs(newRoot), reason: policy.ReasonRootChanged},
		"Retiring: a certificate of the retired root claiming the new one": {secret: buildWith(pairs(root, newRoot), newRoot, leaf, issuing),
			statusRoot: newRoot, bundle: pairs(newRoot), reason: policy.ReasonIncorrectIssuer},
		"ca.crt of a foreign root, the chain of the bundle's": {secret: buildWith(pairs(otherRoot), root, leaf, issuing),
			bundle: pairs(root), reason: policy.ReasonTrustOutdated, readsLive: true},
		"current":                         {secret: build(leaf, issuing)},
		"key of another certificate":      {secret: withKeyOf(build(leaf, issuing), stranger), reason: policy.ReasonInvalidKeyPair},
		"signed under another root":       {secret: build(foreignLeaf, otherIssuing), reason: policy.ReasonIncorrectIssuer},
		"intermediate missing from chain": {secret: build(leaf), reason: policy.ReasonIncorrectIssuer},
		"expired":                         {secret: build(expired, issuing), reason: policy.ReasonRenewing},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			statusRootFP := rootFP
			if tc.statusRoot.Cert != nil {
				statusRootFP = contract.Fingerprint(tc.statusRoot.Cert)
			}
			var bundle []*x509.Certificate
			for _, b := range tc.bundle {
				bundle = append(bundle, b.Cert)
			}
			var bundleFPs []string
			if bundle != nil {
				bundleFPs = contract.Fingerprints(bundle)
			}
			live := policy.NewInput(cert, tc.secret, statusRootFP, now).WithTrust(bundle, bundleFPs)
			liveReason, _, liveTriggered := policy.Default.Evaluate(live)
			assert.Equal(t, tc.reason, liveReason, "the live Secret's decision")

			facts := newSecretFacts()
			cached, err := facts.transform(tc.secret.DeepCopy())
			require.NoError(t, err)
			for look := 1; look <= 2; look++ { // the second look reads the recorded verdict
				view, data, ok := facts.data(cached.(*corev1.Secret))
				require.True(t, ok)
				if bundle != nil && !data.CanVerify(bundle) {
					assert.True(t, tc.readsLive, "look %d: the facts cannot answer, the sync would read the live Secret", look)
					continue
				}
				assert.False(t, tc.readsLive, "look %d: the facts answer", look)
				in := policy.Input{Certificate: cert, Secret: view, RootFingerprint: statusRootFP, Now: now,
					SpecHash: live.SpecHash, Data: data}.WithTrust(bundle, bundleFPs)
				reason, _, triggered := policy.Default.Evaluate(in)
				assert.Equal(t, tc.reason != "", triggered, "look %d", look)
				assert.Equal(t, tc.reason, reason, "look %d", look)
				assert.Equal(t, liveTriggered, triggered, "look %d: the live Secret's decision", look)
				assert.Equal(t, liveReason, reason, "look %d: the live Secret's decision", look)
				if data.Leaf != nil {
					assert.Equal(t, live.Data.Leaf.NotAfter, data.Leaf.NotAfter)
					assert.Equal(t, 0, live.Data.Leaf.SerialNumber.Cmp(data.Leaf.SerialNumber))
				}
			}
			d := facts.facts["secret-uid"]
			require.NotNil(t, d.leaf)
			assert.Nil(t, d.leaf.der, "the leaf's DER is dropped once its chain is checked")
			require.NotNil(t, d.trust)
			second := tc.secret.DeepCopy()
			second.UID = "secret-2"
			_, err = facts.transform(second)
			require.NoError(t, err)
			assert.Same(t, d.trust, facts.facts["secret-2"].trust, "the roots of one ca.crt and their fingerprints are kept once")
			assert.Len(t, facts.trusts, 1)
		})
	}
}

func TestCachedCertificatesShareTheirRoots(t *testing.T) {
	a, b := &v1alpha1.Certificate{}, &v1alpha1.Certificate{}
	for _, c := range []*v1alpha1.Certificate{a, b} {
		// Built apart, as two decoded objects are.
		c.Status.RootFingerprintSHA256 = strings.Repeat("ab", 32)
		c.Status.TrustedRootsSHA256 = []string{strings.Repeat("ab", 32), strings.Repeat("cd", 32)}
		if _, err := stripManagedFields(c); err != nil {
			t.Fatal(err)
		}
	}
	if unsafe.StringData(a.Status.RootFingerprintSHA256) != unsafe.StringData(b.Status.RootFingerprintSHA256) {
		t.Error("two cached Certificates under one root keep two copies of its fingerprint")
	}
	if &a.Status.TrustedRootsSHA256[0] != &b.Status.TrustedRootsSHA256[0] {
		t.Error("two cached Certificates trusting one bundle keep two lists of its roots")
	}
	if got := b.Status.TrustedRootsSHA256; len(got) != 2 || got[1] != strings.Repeat("cd", 32) {
		t.Errorf("the shared list is %v, want both roots in order", got)
	}
}
