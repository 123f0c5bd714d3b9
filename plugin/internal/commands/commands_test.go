package commands

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// certificate builds a Certificate of CA ca in namespace ns with the options applied.
func certificate(ns, ca string, opts ...func(*v1alpha1.Certificate)) v1alpha1.Certificate {
	c := v1alpha1.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}, Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: ca}}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func ready(status metav1.ConditionStatus) func(*v1alpha1.Certificate) {
	return func(c *v1alpha1.Certificate) {
		c.Status.Conditions = append(c.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status})
	}
}

func renewIn(d time.Duration) func(*v1alpha1.Certificate) {
	return func(c *v1alpha1.Certificate) { c.Status.RenewalTime = &metav1.Time{Time: now.Add(d)} }
}

func TestSummarize(t *testing.T) {
	ca := v1alpha1.CertificateAuthority{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "ca"}}
	ca.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "VaultError", Message: "vault: 503"}}
	tests := map[string]struct {
		cas   []v1alpha1.CertificateAuthority
		certs []v1alpha1.Certificate
		want  []caSummary
	}{
		"no objects: no rows": {want: []caSummary{}},
		"a CA without status is Unknown, with no Certificates": {
			cas:  []v1alpha1.CertificateAuthority{{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"}}},
			want: []caSummary{{Namespace: "a", Name: "x", Ready: "Unknown"}},
		},
		"Certificates are counted by Ready, failing, pending and renewing within the window": {
			cas: []v1alpha1.CertificateAuthority{ca},
			certs: []v1alpha1.Certificate{
				certificate("a", "ca", ready(metav1.ConditionTrue), renewIn(time.Hour)),
				certificate("a", "ca", ready(metav1.ConditionTrue), renewIn(48*time.Hour)),
				certificate("a", "ca", ready(metav1.ConditionFalse)),
				certificate("a", "ca", func(c *v1alpha1.Certificate) { c.Status.FailedIssuanceAttempts = 2 }),
				certificate("a", "ca"),
			},
			want: []caSummary{{Namespace: "a", Name: "ca", Ready: "False", Reason: "VaultError", Message: "vault: 503",
				Certificates: certCounts{Total: 5, Ready: 2, Failing: 2, Pending: 1, RenewingSoon: 1}}},
		},
		"a CA that only Certificates name is NotFound; rows sort by namespace and name": {
			cas:   []v1alpha1.CertificateAuthority{{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "a"}}},
			certs: []v1alpha1.Certificate{certificate("a", "gone", ready(metav1.ConditionFalse))},
			want: []caSummary{
				{Namespace: "a", Name: "gone", Ready: "NotFound", Certificates: certCounts{Total: 1, Failing: 1}},
				{Namespace: "b", Name: "a", Ready: "Unknown"},
			},
		},
		"a root rotation shows its phase, and in Trusting and Moving its count": {
			cas: []v1alpha1.CertificateAuthority{
				rotating("r1", &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting, Trusting: 1, Total: 3}),
				rotating("r2", &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationMoving, Trusting: 3, Moved: 2, Total: 3}),
				rotating("r3", &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationOverlap, Moved: 3, Total: 3}),
				rotating("r4", &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationCompleted}),
			},
			want: []caSummary{
				{Namespace: "a", Name: "r1", Ready: "Unknown", Rotation: "Trusting 1/3"},
				{Namespace: "a", Name: "r2", Ready: "Unknown", Rotation: "Moving 2/3"},
				{Namespace: "a", Name: "r3", Ready: "Unknown", Rotation: "Overlap"},
				{Namespace: "a", Name: "r4", Ready: "Unknown"},
			},
		},
		"the same CA name in two namespaces is two CAs": {
			certs: []v1alpha1.Certificate{certificate("a", "ca"), certificate("b", "ca")},
			want: []caSummary{
				{Namespace: "a", Name: "ca", Ready: "NotFound", Certificates: certCounts{Total: 1, Pending: 1}},
				{Namespace: "b", Name: "ca", Ready: "NotFound", Certificates: certCounts{Total: 1, Pending: 1}},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, summarize(tc.cas, tc.certs, now, 24*time.Hour))
		})
	}
}

// rotating returns a CA of namespace a called name whose root rotation is r.
func rotating(name string, r *v1alpha1.RootRotationStatus) v1alpha1.CertificateAuthority {
	ca := v1alpha1.CertificateAuthority{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}}
	ca.Status.RootRotation = r
	return ca
}

// issue makes a certificate for tmpl signed by parent (self-signed when parent is nil).
func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c, key
}

func pemOf(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func TestVerifyChainAndSameRoots(t *testing.T) {
	caTmpl := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, IsCA: true,
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	root, rootKey := issue(t, caTmpl("root", 1), nil, nil)
	other, _ := issue(t, caTmpl("other root", 2), nil, nil)
	inter, interKey := issue(t, caTmpl("issuing", 3), root, rootKey)
	leaf, _ := issue(t, &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{"a.example.com"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, inter, interKey)

	tests := map[string]struct {
		chain      []*x509.Certificate
		bundle     []byte
		wantOK     bool
		wantDetail string
	}{
		"leaf and intermediate up to the published root":   {chain: []*x509.Certificate{leaf, inter}, bundle: pemOf(root), wantOK: true, wantDetail: "3 certificates up to root"},
		"either root of a bundle during a rotation":        {chain: []*x509.Certificate{leaf, inter}, bundle: pemOf(other, root), wantOK: true},
		"a foreign root does not verify":                   {chain: []*x509.Certificate{leaf, inter}, bundle: pemOf(other), wantDetail: "unknown authority"},
		"a chain without its intermediate does not verify": {chain: []*x509.Certificate{leaf}, bundle: pemOf(root), wantDetail: "unknown authority"},
		"an empty bundle says so":                          {chain: []*x509.Certificate{leaf, inter}, bundle: nil, wantDetail: "published bundle: no PEM certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := verifyChain(tc.chain, tc.bundle, now)
			assert.Equal(t, tc.wantOK, c.OK, c.Detail)
			assert.Contains(t, c.Detail, tc.wantDetail)
		})
	}

	assert.True(t, sameRoots(pemOf(root, other), pemOf(other, root)).OK, "order does not matter")
	assert.False(t, sameRoots(pemOf(root), pemOf(other, root)).OK, "a missing root is a difference")

	d := describe(leaf)
	assert.Equal(t, "04", d.Serial)
	assert.Equal(t, []string{"server auth"}, d.KeyUsages)
	assert.Equal(t, "ECDSA P-256", d.PublicKey)
}

func TestUntil(t *testing.T) {
	tests := map[string]struct {
		at   time.Time
		want string
	}{
		"days ahead":    {at: now.Add(90 * 24 * time.Hour), want: "in 90d"},
		"hours ahead":   {at: now.Add(5*time.Hour + 30*time.Minute), want: "in 5h"},
		"minutes ahead": {at: now.Add(3 * time.Minute), want: "in 3m"},
		"in the past":   {at: now.Add(-3 * 24 * time.Hour), want: "expired 3d ago"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, until(now, tc.at)) })
	}
}

func TestRequestPatch(t *testing.T) {
	assert.JSONEq(t, `{"metadata":{"annotations":{"clusterpki.dev/renew":"2026-11-28T12:00:00Z"}}}`,
		string(requestPatch(v1alpha1.AnnotationRenew, now)))
}
