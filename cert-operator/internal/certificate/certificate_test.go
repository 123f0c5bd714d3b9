package certificate

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
	"github.com/clusterpki/clusterpki/pkg/controller"
)

func TestFailureBackoff(t *testing.T) {
	tests := map[string]struct {
		attempts int32
		want     time.Duration
	}{
		"the first failure waits 5s":         {attempts: 1, want: 5 * time.Second},
		"each further failure doubles":       {attempts: 3, want: 20 * time.Second},
		"the delay is capped at the maximum": {attempts: 30, want: 5 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, failureBackoff(tc.attempts, 5*time.Minute))
		})
	}
}

func TestBackoffRemaining(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	failed := func(generation, observed int64, reason string) *v1alpha1.Certificate {
		last := metav1.NewTime(now.Add(-2 * time.Second))
		return &v1alpha1.Certificate{
			ObjectMeta: metav1.ObjectMeta{Generation: generation},
			Status: v1alpha1.CertificateStatus{
				FailedIssuanceAttempts: 1, LastFailureTime: &last,
				Conditions: []metav1.Condition{{Type: "Ready", Status: "False", Reason: reason, ObservedGeneration: observed}},
			},
		}
	}
	c := &Controller{maxBackoff: 5 * time.Minute}
	tests := map[string]struct {
		cert *v1alpha1.Certificate
		want time.Duration
	}{
		"a recent refusal waits out the rest of its backoff": {cert: failed(1, 1, ReasonIssuanceFailed), want: 3 * time.Second},
		"a changed spec tries at once":                       {cert: failed(2, 1, ReasonIssuanceFailed), want: 0},
		"a Certificate that never failed tries at once":      {cert: &v1alpha1.Certificate{}, want: 0},
		"a failure since superseded by another reason":       {cert: failed(1, 1, ReasonCANotReady), want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, max(c.backoffRemaining(tc.cert, now), 0))
		})
	}
}

// A cache that does not show the failure just recorded hands the retry to the queue's rate
// limiter (an error), not to the backoff (a requeue), which a stale cache could cut short.
func TestAwaitCache(t *testing.T) {
	stale := certificate()
	stale.ResourceVersion = "1"
	written := stale.DeepCopy()
	written.ResourceVersion = "2"
	written.Status.FailedIssuanceAttempts = 1
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	require.NoError(t, indexer.Add(stale))
	c := &Controller{certificates: listers.NewCertificateLister(indexer)}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.awaitCache(ctx, written)
	require.Error(t, err)
	var requeue *controller.RequeueAfterError
	assert.False(t, errors.As(err, &requeue))

	require.NoError(t, indexer.Update(written))
	assert.NoError(t, c.awaitCache(context.Background(), written))
	require.NoError(t, indexer.Delete(written))
	assert.NoError(t, c.awaitCache(context.Background(), written), "a Certificate that is gone needs no wait")
}

func TestParseSignResponse(t *testing.T) {
	root := testpki.Root(t, "root")
	issuing := testpki.Intermediate(t, root, "issuing")
	leaf := testpki.Leaf(t, issuing, "web.example.com", nil, time.Now(), time.Now().Add(time.Hour))
	pemOf := func(p testpki.Pair) string { return string(contract.EncodeCertificates(p.Cert)) }

	tests := map[string]struct {
		data     map[string]any
		wantErr  string
		wantRoot *testpki.Pair
	}{
		"ca_chain runs from the issuing CA to the root": {
			data:     map[string]any{"certificate": pemOf(leaf), "ca_chain": []any{pemOf(issuing), pemOf(root)}},
			wantRoot: &root,
		},
		"a chain without its root is refused": {
			data:    map[string]any{"certificate": pemOf(leaf), "ca_chain": []any{pemOf(issuing)}},
			wantErr: "ca_chain holds no self-signed root",
		},
		"no certificate is refused": {
			data: map[string]any{}, wantErr: "no certificate in the response",
		},
		"no chain is refused": {
			data: map[string]any{"certificate": pemOf(leaf)}, wantErr: "no CA chain in the response",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gotLeaf, inter, gotRoot, err := parseSignResponse(tc.data, contract.Fingerprint(root.Cert))
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, leaf.Cert.Raw, gotLeaf.Raw)
			require.Len(t, inter, 1)
			assert.Equal(t, issuing.Cert.Raw, inter[0].Raw)
			assert.Equal(t, tc.wantRoot.Cert.Raw, gotRoot.Raw)
		})
	}
}

func TestCAChangeMatters(t *testing.T) {
	ca := func(ready bool, root string, roles ...string) *v1alpha1.CertificateAuthority {
		status := metav1.ConditionFalse
		if ready {
			status = metav1.ConditionTrue
		}
		c := &v1alpha1.CertificateAuthority{Status: v1alpha1.CertificateAuthorityStatus{
			Conditions: []metav1.Condition{{Type: "Ready", Status: status}},
			Root:       &v1alpha1.CACertificateStatus{FingerprintSHA256: root},
		}}
		for _, r := range roles {
			c.Status.Roles = append(c.Status.Roles, v1alpha1.ProvisionedRole{Name: r, SignPath: "pki-x/sign/" + r})
		}
		return c
	}
	tests := map[string]struct {
		old, new *v1alpha1.CertificateAuthority
		want     bool
	}{
		"becoming Ready matters":                   {old: ca(false, "a", "web"), new: ca(true, "a", "web"), want: true},
		"a new root matters":                       {old: ca(true, "a", "web"), new: ca(true, "b", "web"), want: true},
		"a new role matters":                       {old: ca(true, "a", "web"), new: ca(true, "a", "web", "api"), want: true},
		"a status rewrite with no change does not": {old: ca(true, "a", "web"), new: ca(true, "a", "web")},
		"a new trust bundle matters": {old: ca(true, "a", "web"), new: func() *v1alpha1.CertificateAuthority {
			c := ca(true, "a", "web")
			c.Status.TrustBundle = "bundle"
			return c
		}(), want: true},
		"a new root rotation phase matters": {old: ca(true, "a", "web"), new: func() *v1alpha1.CertificateAuthority {
			c := ca(true, "a", "web")
			c.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationMoving}
			return c
		}(), want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, caChangeMatters(tc.old, tc.new))
		})
	}
}

// During a root rotation Vault answers ca_chain = [new issuing CA, cross-signed new root, new
// root, old root]: the last element is the old root, and the cross-signed root must reach
// tls.crt.
func TestParseSignResponseDuringRootRotation(t *testing.T) {
	old, newRoot := testpki.Root(t, "root"), testpki.Root(t, "root")
	cross := testpki.CrossSigned(t, newRoot, old)
	issuing := testpki.Intermediate(t, newRoot, "issuing 2")
	leaf := testpki.Leaf(t, issuing, "web.example.com", nil, time.Now(), time.Now().Add(time.Hour))
	pemOf := func(p testpki.Pair) string { return string(contract.EncodeCertificates(p.Cert)) }
	data := map[string]any{"certificate": pemOf(leaf),
		"ca_chain": []any{pemOf(issuing), pemOf(cross), pemOf(newRoot), pemOf(old)}}

	tests := map[string]struct {
		statusRoot testpki.Pair
		wantRoot   testpki.Pair
	}{
		"status.root is the new root (Moving)":                             {statusRoot: newRoot, wantRoot: newRoot},
		"status.root is the old root (before the flip)":                    {statusRoot: old, wantRoot: old},
		"status.root is neither: the first root, for the caller to refuse": {statusRoot: testpki.Root(t, "other"), wantRoot: newRoot},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gotLeaf, inter, root, err := parseSignResponse(data, contract.Fingerprint(tc.statusRoot.Cert))
			require.NoError(t, err)
			assert.Equal(t, leaf.Cert.Raw, gotLeaf.Raw)
			assert.Equal(t, tc.wantRoot.Cert.Raw, root.Raw)
			require.Len(t, inter, 2, "every element that is not self-signed, in order")
			assert.Equal(t, issuing.Cert.Raw, inter[0].Raw)
			assert.Equal(t, cross.Cert.Raw, inter[1].Raw)

			// What tls.crt then holds verifies for a client of either root.
			pool := x509.NewCertPool()
			for _, c := range inter {
				pool.AddCert(c)
			}
			for _, trusted := range []testpki.Pair{old, newRoot} {
				roots := x509.NewCertPool()
				roots.AddCert(trusted.Cert)
				_, err := gotLeaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
				assert.NoError(t, err)
			}
		})
	}
}

func TestRotationBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := cache.ObjectName{Namespace: "ns", Name: "a"}, cache.ObjectName{Namespace: "ns", Name: "b"}, cache.ObjectName{Namespace: "ns", Name: "c"}
	bound := newRotationBound(500 * time.Millisecond)

	_, wait := bound.take(a, now)
	assert.Zero(t, wait, "the first re-issue goes at once (burst 1)")
	at, wait := bound.take(b, now)
	assert.Equal(t, 500*time.Millisecond, wait, "the second waits one interval")
	assert.Equal(t, now.Add(500*time.Millisecond), at)
	at2, wait2 := bound.take(b, now.Add(100*time.Millisecond))
	assert.Equal(t, at, at2, "a second look keeps its slot, it does not reserve another")
	assert.Equal(t, 400*time.Millisecond, wait2)
	_, wait = bound.take(c, now.Add(100*time.Millisecond))
	assert.Equal(t, 900*time.Millisecond, wait, "the third queues behind the second")
	_, wait = bound.take(b, now.Add(500*time.Millisecond))
	assert.Zero(t, wait, "at its slot it goes")
	assert.NotContains(t, bound.slots, b, "and the slot is used up")

	bound.drop(c, now.Add(600*time.Millisecond))
	_, wait = bound.take(cache.ObjectName{Namespace: "ns", Name: "d"}, now.Add(600*time.Millisecond))
	assert.Equal(t, 400*time.Millisecond, wait, "a dropped slot goes back to the bucket")

	_, wait = newRotationBound(0).take(a, now)
	assert.Zero(t, wait, "0 disables the bound")
}
