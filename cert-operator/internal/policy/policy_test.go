package policy

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
)

// fixture is a CA hierarchy and a certificate issued from it, valid for 30 hours from start.
type fixture struct {
	root, issuing, leaf testpki.Pair
	start               time.Time
}

func newFixture(t *testing.T) fixture {
	root := testpki.Root(t, "root")
	issuing := testpki.Intermediate(t, root, "issuing")
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	return fixture{root: root, issuing: issuing, start: start,
		leaf: testpki.Leaf(t, issuing, "web.example.com", nil, start, start.Add(30*time.Hour))}
}

// certificate builds the Certificate team-a/web with opts applied.
func certificate(opts ...func(*v1alpha1.Certificate)) *v1alpha1.Certificate {
	c := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1"},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: "web-tls",
			CommonName: "web.example.com", TTL: "30h",
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// validSecret builds the Secret the operator would have written for cert from f, then applies opts.
func (f fixture) validSecret(cert *v1alpha1.Certificate, opts ...func(*corev1.Secret)) *corev1.Secret {
	key, _ := pki.EncodePrivateKey(f.leaf.Key)
	spec, _ := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	s := secret.Build(cert, "c1", secret.Material{
		Certificate: contract.EncodeCertificates(f.leaf.Cert, f.issuing.Cert),
		PrivateKey:  key,
		CA:          contract.EncodeCertificates(f.root.Cert),
	}, secret.Provenance{
		SpecHash:        secret.SpecHash(cert.Spec, spec.String()),
		RootFingerprint: contract.Fingerprint(f.root.Cert),
		RenewRequest:    cert.Annotations[v1alpha1.AnnotationRenew],
	})
	for _, o := range opts {
		o(s)
	}
	return s
}

func TestDefaultChain(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	rootFP := contract.Fingerprint(f.root.Cert)
	renewed := func(c *v1alpha1.Certificate) {
		c.Annotations = map[string]string{v1alpha1.AnnotationRenew: "2026-01-01T00:00:00Z"}
	}

	tests := map[string]struct {
		cert   *v1alpha1.Certificate
		secret func(cert *v1alpha1.Certificate) *corev1.Secret // nil: no Secret
		now    time.Time                                       // zero: an hour after issuance
		root   string                                          // empty: f's root
		// wantReason is empty when nothing should trigger.
		wantReason  string
		wantMessage string
	}{
		"a valid certificate needs nothing": {
			cert: certificate(), secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
		},
		"a missing Secret is issued": {
			cert: certificate(), wantReason: ReasonDoesNotExist, wantMessage: `Secret "web-tls" does not exist`,
		},
		"a Secret without our labels is someone else's": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-tls", Namespace: "team-a"}}
			},
			wantReason: ReasonSecretConflict, wantMessage: `Secret "web-tls" exists and is not managed by this Certificate; it is left untouched`,
		},
		"a Secret of another Certificate is a conflict": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) { s.Labels[v1alpha1.LabelCertificate] = "api" })
			},
			wantReason: ReasonSecretConflict, wantMessage: `Secret "web-tls" exists and is not managed by this Certificate; it is left untouched`,
		},
		"a Secret without a key is re-issued": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) { delete(s.Data, corev1.TLSPrivateKeyKey) })
			},
			wantReason: ReasonMissingData, wantMessage: `Secret "web-tls" has no tls.key`,
		},
		"a Secret with a garbled certificate is re-issued": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) { s.Data[corev1.TLSCertKey] = []byte("garbage") })
			},
			wantReason: ReasonInvalidData, wantMessage: `Secret "web-tls" has an unreadable tls.crt: no PEM certificate`,
		},
		"a key that does not match the certificate is re-issued": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) {
					key, _ := pki.EncodePrivateKey(other.leaf.Key)
					s.Data[corev1.TLSPrivateKeyKey] = key
				})
			},
			wantReason: ReasonInvalidKeyPair, wantMessage: `the private key in Secret "web-tls" does not match its certificate`,
		},
		"a new CA root re-issues": {
			cert: certificate(), root: contract.Fingerprint(other.root.Cert),
			secret:     func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
			wantReason: ReasonRootChanged, wantMessage: "the CA's root certificate changed since this certificate was issued",
		},
		"a ca.crt that is not the CA's root re-issues": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) { s.Data[contract.TrustKey] = contract.EncodeCertificates(other.root.Cert) })
			},
			wantReason: ReasonIncorrectIssuer, wantMessage: `ca.crt in Secret "web-tls" is not the CA's root certificate`,
		},
		"a certificate from another CA re-issues": {
			cert: certificate(),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) {
					key, _ := pki.EncodePrivateKey(other.leaf.Key)
					s.Data[corev1.TLSCertKey] = contract.EncodeCertificates(other.leaf.Cert, other.issuing.Cert)
					s.Data[corev1.TLSPrivateKeyKey] = key
				})
			},
			wantReason: ReasonIncorrectIssuer,
		},
		"a changed spec re-issues": {
			cert: certificate(func(c *v1alpha1.Certificate) { c.Spec.AltNames = []string{"www.example.com"} }),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(certificate())
			},
			wantReason: ReasonSpecChanged, wantMessage: "the Certificate's spec changed since its certificate was issued",
		},
		"a new renew annotation re-issues": {
			cert:       certificate(renewed),
			secret:     func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(certificate()) },
			wantReason: ReasonManuallyTriggered, wantMessage: `renewal requested through the clusterpki.dev/renew annotation ("2026-01-01T00:00:00Z")`,
		},
		"a renew annotation already served needs nothing": {
			cert:   certificate(renewed),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
		},
		"a certificate just before its renewal time needs nothing": {
			cert: certificate(), now: f.start.Add(20*time.Hour - renewalJitterBound(30*time.Hour) - time.Second),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
		},
		"a certificate at two thirds of its life is renewed": {
			cert: certificate(), now: f.start.Add(20 * time.Hour),
			secret:     func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
			wantReason: ReasonRenewing,
		},
		"renewBefore moves the renewal": {
			cert: certificate(func(c *v1alpha1.Certificate) { c.Spec.RenewBefore = "2h" }), now: f.start.Add(20 * time.Hour),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
		},
		"an expired certificate is renewed": {
			cert: certificate(), now: f.start.Add(31 * time.Hour),
			secret:     func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) },
			wantReason: ReasonRenewing, wantMessage: "the certificate expired at " + f.leaf.Cert.NotAfter.UTC().Format(time.RFC3339),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var s *corev1.Secret
			if tc.secret != nil {
				s = tc.secret(tc.cert)
			}
			now := tc.now
			if now.IsZero() {
				now = f.start.Add(time.Hour)
			}
			root := tc.root
			if root == "" {
				root = rootFP
			}
			reason, message, triggered := Default.Evaluate(NewInput(tc.cert, s, root, now))
			assert.Equal(t, tc.wantReason, reason)
			assert.Equal(t, tc.wantReason != "", triggered)
			if tc.wantMessage != "" {
				assert.Equal(t, tc.wantMessage, message)
			}
		})
	}
}

// renewalJitterBound is the largest jitter a certificate of lifetime can get.
func renewalJitterBound(lifetime time.Duration) time.Duration {
	return min(lifetime/100, 3*time.Minute)
}

func TestRenewalTimeFollowsTheLeaf(t *testing.T) {
	f := newFixture(t)
	leaf := &x509.Certificate{NotBefore: f.start, NotAfter: f.start.Add(30 * time.Hour)}
	at := RenewalTime(certificate(), leaf)
	assert.WithinRange(t, at, f.start.Add(20*time.Hour-3*time.Minute), f.start.Add(20*time.Hour))
}

func TestRenewalTimeNeverBeforeTheFloor(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(start.Add(d)); return &t }
	tests := map[string]struct {
		cert *v1alpha1.Certificate
		leaf *x509.Certificate
		want time.Time
	}{
		"a renewBefore of nearly the whole lifetime waits for the floor after the last issuance": {
			cert: certificate(func(c *v1alpha1.Certificate) {
				c.Spec.TTL, c.Spec.RenewBefore = "720h", "719h59m59s"
				c.Status.LastIssuanceTime = at(30 * time.Second)
			}),
			leaf: &x509.Certificate{NotBefore: start, NotAfter: start.Add(720*time.Hour + 30*time.Second)},
			want: start.Add(30*time.Second + time.Minute),
		},
		"without a recorded issuance the leaf's notBefore is the floor's start": {
			cert: certificate(func(c *v1alpha1.Certificate) { c.Spec.TTL, c.Spec.RenewBefore = "720h", "719h59m59s" }),
			leaf: &x509.Certificate{NotBefore: start, NotAfter: start.Add(720*time.Hour + 30*time.Second)},
			want: start.Add(time.Minute),
		},
		"a certificate shorter-lived than the floor is renewed at the floor, after it expired": {
			cert: certificate(func(c *v1alpha1.Certificate) { c.Status.LastIssuanceTime = at(30 * time.Second) }),
			leaf: &x509.Certificate{NotBefore: start, NotAfter: start.Add(50 * time.Second)},
			want: start.Add(90 * time.Second),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, RenewalTime(tc.cert, tc.leaf))
		})
	}
}

func TestReissueHeld(t *testing.T) {
	f := newFixture(t)
	rootFP := contract.Fingerprint(f.root.Cert)
	issuedAt := f.start.Add(2 * time.Hour)
	recorded := func(c *v1alpha1.Certificate) {
		t := metav1.NewTime(issuedAt)
		c.Status.LastIssuanceTime = &t
		c.Generation, c.Status.ObservedGeneration = 3, 3
	}
	current := func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(c) }
	tests := map[string]struct {
		cert   *v1alpha1.Certificate
		secret func(c *v1alpha1.Certificate) *corev1.Secret // nil: no Secret
		now    time.Time
		// wantUntil is when the re-issue may happen; zero means it is not held.
		wantUntil time.Time
	}{
		"a Certificate never issued is not held": {
			cert: certificate(), now: f.start,
		},
		"a deleted Secret within the floor waits for it": {
			cert: certificate(recorded), now: issuedAt.Add(10 * time.Second),
			wantUntil: issuedAt.Add(time.Minute),
		},
		"a damaged Secret within the floor waits for it": {
			cert: certificate(recorded), now: issuedAt.Add(59 * time.Second),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret {
				return f.validSecret(c, func(s *corev1.Secret) { delete(s.Data, corev1.TLSPrivateKeyKey) })
			},
			wantUntil: issuedAt.Add(time.Minute),
		},
		"at the floor's end nothing is held": {
			cert: certificate(recorded), now: issuedAt.Add(time.Minute), secret: current,
		},
		"a leaf issued just now holds without a recorded issuance (lost status write)": {
			cert: certificate(func(c *v1alpha1.Certificate) { c.Generation, c.Status.ObservedGeneration = 1, 1 }),
			now:  f.start.Add(30 * time.Second), secret: current,
			wantUntil: f.start.Add(time.Minute),
		},
		"a spec change since the last status is not held": {
			cert: certificate(recorded, func(c *v1alpha1.Certificate) { c.Generation = 4 }),
			now:  issuedAt.Add(10 * time.Second),
		},
		"a spec other than the Secret's is not held": {
			cert:   certificate(recorded, func(c *v1alpha1.Certificate) { c.Spec.AltNames = []string{"www.example.com"} }),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(certificate()) },
			now:    issuedAt.Add(10 * time.Second),
		},
		"a new renew request is not held": {
			cert: certificate(recorded, func(c *v1alpha1.Certificate) {
				c.Annotations = map[string]string{v1alpha1.AnnotationRenew: "again"}
			}),
			secret: func(c *v1alpha1.Certificate) *corev1.Secret { return f.validSecret(certificate()) },
			now:    issuedAt.Add(10 * time.Second),
		},
		"a renew request already answered is held": {
			cert: certificate(recorded, func(c *v1alpha1.Certificate) {
				c.Annotations = map[string]string{v1alpha1.AnnotationRenew: "again"}
			}),
			secret: current, now: issuedAt.Add(10 * time.Second),
			wantUntil: issuedAt.Add(time.Minute),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var s *corev1.Secret
			if tc.secret != nil {
				s = tc.secret(tc.cert)
			}
			until, held := ReissueHeld(NewInput(tc.cert, s, rootFP, tc.now))
			assert.Equal(t, !tc.wantUntil.IsZero(), held)
			assert.True(t, tc.wantUntil.Equal(until), "held until %s, want %s", until, tc.wantUntil)
		})
	}
}
