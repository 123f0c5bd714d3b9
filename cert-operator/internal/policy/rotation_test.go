package policy

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
)

// rotation is a CA in the middle of a root rotation: the old root and its issuing CA, the new
// root, its certificate cross-signed by the old root and the new issuing CA, a leaf under each
// issuing CA (the same key) and an unrelated root.
type rotation struct {
	old, oldIssuing, new, cross, newIssuing, other testpki.Pair
	oldLeaf, newLeaf                               testpki.Pair
	start                                          time.Time
}

func newRotation(t *testing.T) rotation {
	r := rotation{old: testpki.Root(t, "root"), new: testpki.Root(t, "root"), other: testpki.Root(t, "root")}
	r.oldIssuing = testpki.Intermediate(t, r.old, "issuing")
	r.cross = testpki.CrossSigned(t, r.new, r.old)
	r.newIssuing = testpki.Intermediate(t, r.new, "issuing 2")
	r.start = time.Now().Add(-time.Minute).Truncate(time.Second)
	r.oldLeaf = testpki.Leaf(t, r.oldIssuing, "web.example.com", nil, r.start, r.start.Add(30*time.Hour))
	r.newLeaf = testpki.Leaf(t, r.newIssuing, "web.example.com", r.oldLeaf.Key, r.start, r.start.Add(30*time.Hour))
	return r
}

// secret returns the Secret the operator writes for tls.crt = chain, ca.crt = roots, issued
// under issuedUnder.
func (r rotation) secret(t *testing.T, chain []testpki.Pair, roots []testpki.Pair, issuedUnder testpki.Pair) *corev1.Secret {
	cert := certificate()
	key, err := pki.EncodePrivateKey(r.oldLeaf.Key)
	assert.NoError(t, err)
	spec, _ := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	return secret.Build(cert, "c1", secret.Material{
		Certificate: contract.EncodeCertificates(certsOf(chain)...),
		PrivateKey:  key,
		CA:          contract.EncodeCertificates(certsOf(roots)...),
	}, secret.Provenance{SpecHash: secret.SpecHash(cert.Spec, spec.String()), RootFingerprint: contract.Fingerprint(issuedUnder.Cert)})
}

func certsOf(pairs []testpki.Pair) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, p.Cert)
	}
	return out
}

func TestRootRotationChecks(t *testing.T) {
	r := newRotation(t)
	p := func(pairs ...testpki.Pair) []testpki.Pair { return pairs }
	oldChain, movedChain := p(r.oldLeaf, r.oldIssuing), p(r.newLeaf, r.newIssuing, r.cross)

	tests := map[string]struct {
		// root is status.root, bundle status.trustBundle (nil: none published).
		root   testpki.Pair
		bundle []testpki.Pair
		secret *corev1.Secret
		// wantReason is empty when nothing should trigger.
		wantReason  string
		wantMessage string
	}{
		"Trusting: ca.crt with the old root only is refreshed in place": {
			root: r.old, bundle: p(r.old, r.new), secret: r.secret(t, oldChain, p(r.old), r.old),
			wantReason: ReasonTrustOutdated, wantMessage: `ca.crt in Secret "web-tls" does not hold the CA's trust bundle (2 root(s))`,
		},
		"Trusting: ca.crt holding the bundle needs nothing": {
			root: r.old, bundle: p(r.old, r.new), secret: r.secret(t, oldChain, p(r.old, r.new), r.old),
		},
		"the order of the roots in ca.crt does not matter": {
			root: r.old, bundle: p(r.old, r.new), secret: r.secret(t, oldChain, p(r.new, r.old), r.old),
		},
		"Moving: a certificate of the old root is re-issued": {
			root: r.new, bundle: p(r.old, r.new), secret: r.secret(t, oldChain, p(r.old, r.new), r.old),
			wantReason: ReasonRootChanged,
		},
		"Moving: a certificate moved to the new root (with the cross-signed root) needs nothing": {
			root: r.new, bundle: p(r.old, r.new), secret: r.secret(t, movedChain, p(r.old, r.new), r.new),
		},
		"Moving: a moved certificate without the cross-signed root still chains to the new root": {
			root: r.new, bundle: p(r.old, r.new), secret: r.secret(t, p(r.newLeaf, r.newIssuing), p(r.old, r.new), r.new),
		},
		"Retiring: a moved certificate's ca.crt loses the old root in place": {
			root: r.new, bundle: p(r.new), secret: r.secret(t, movedChain, p(r.old, r.new), r.new),
			wantReason: ReasonTrustOutdated,
		},
		"Retiring: a certificate of the retired root is re-issued, not refreshed": {
			root: r.new, bundle: p(r.new), secret: r.secret(t, oldChain, p(r.old, r.new), r.old),
			wantReason: ReasonRootChanged,
		},
		"a certificate of the retired root that claims the new root is re-issued": {
			root: r.new, bundle: p(r.new), secret: r.secret(t, oldChain, p(r.old, r.new), r.new),
			wantReason: ReasonIncorrectIssuer, wantMessage: `ca.crt in Secret "web-tls" is not the CA's trust bundle`,
		},
		"ca.crt holding the bundle but a certificate of another CA is re-issued": {
			root: r.old, bundle: p(r.old, r.new), secret: r.secret(t, p(r.oldLeaf, testpki.Intermediate(t, r.other, "x")), p(r.old, r.new), r.old),
			wantReason: ReasonIncorrectIssuer,
		},
		"a foreign root slipped into ca.crt is taken out in place": {
			root: r.new, bundle: p(r.new), secret: r.secret(t, movedChain, p(r.new, r.other), r.new),
			wantReason: ReasonTrustOutdated,
		},
		"without a published bundle ca.crt must be the root alone": {
			root: r.old, secret: r.secret(t, oldChain, p(r.old, r.new), r.old),
			wantReason: ReasonIncorrectIssuer, wantMessage: `ca.crt in Secret "web-tls" is not the CA's root certificate`,
		},
		"without a published bundle a ca.crt of the root needs nothing": {
			root: r.old, secret: r.secret(t, oldChain, p(r.old), r.old),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := NewInput(certificate(), tc.secret, contract.Fingerprint(tc.root.Cert), r.start.Add(time.Hour))
			if tc.bundle != nil {
				bundle := certsOf(tc.bundle)
				in = in.WithTrust(bundle, contract.Fingerprints(bundle))
			}
			reason, message, triggered := Default.Evaluate(in)
			assert.Equal(t, tc.wantReason, reason, message)
			assert.Equal(t, tc.wantReason != "", triggered)
			if tc.wantMessage != "" {
				assert.Equal(t, tc.wantMessage, message)
			}
		})
	}
}
