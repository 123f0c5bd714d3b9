package certificate

import (
	"testing"
	"time"

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

	cert := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}, Role: "server",
			SecretName: "web-tls", CommonName: "web.example.com", TTL: "30h"},
		Status: v1alpha1.CertificateStatus{ObservedGeneration: 1},
	}
	spec, err := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	require.NoError(t, err)
	rootFP := contract.Fingerprint(root.Cert)
	build := func(l testpki.Pair, chain ...testpki.Pair) *corev1.Secret {
		key, err := pki.EncodePrivateKey(l.Key)
		require.NoError(t, err)
		certs := contract.EncodeCertificates(l.Cert)
		for _, c := range chain {
			certs = append(certs, contract.EncodeCertificates(c.Cert)...)
		}
		s := secret.Build(cert, "c1", secret.Material{Certificate: certs, PrivateKey: key,
			CA: contract.EncodeCertificates(root.Cert)},
			secret.Provenance{SpecHash: secret.SpecHash(cert.Spec, spec.String()), RootFingerprint: rootFP})
		s.UID, s.ResourceVersion = "secret-uid", "7"
		return s
	}
	withKeyOf := func(s *corev1.Secret, other testpki.Pair) *corev1.Secret {
		key, err := pki.EncodePrivateKey(other.Key)
		require.NoError(t, err)
		s.Data[corev1.TLSPrivateKeyKey] = key
		return s
	}

	tests := map[string]struct {
		secret *corev1.Secret
		reason string // "" when nothing triggers
	}{
		"current":                         {secret: build(leaf, issuing)},
		"key of another certificate":      {secret: withKeyOf(build(leaf, issuing), stranger), reason: policy.ReasonInvalidKeyPair},
		"signed under another root":       {secret: build(foreignLeaf, otherIssuing), reason: policy.ReasonIncorrectIssuer},
		"intermediate missing from chain": {secret: build(leaf), reason: policy.ReasonIncorrectIssuer},
		"expired":                         {secret: build(expired, issuing), reason: policy.ReasonRenewing},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			live := policy.NewInput(cert, tc.secret, rootFP, now)
			liveReason, _, liveTriggered := policy.Default.Evaluate(live)

			facts := newSecretFacts()
			cached, err := facts.transform(tc.secret.DeepCopy())
			require.NoError(t, err)
			for look := 1; look <= 2; look++ { // the second look reads the recorded verdict
				view, data, ok := facts.data(cached.(*corev1.Secret))
				require.True(t, ok)
				in := policy.Input{Certificate: cert, Secret: view, RootFingerprint: rootFP, Now: now,
					SpecHash: live.SpecHash, Data: data}
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
		})
	}
}
