package certoperator

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
)

// verifiesAgainst reports whether the leaf of tlsCrt chains, through the rest of tlsCrt, to
// one of roots: what a client holding only roots accepts.
func verifiesAgainst(t *testing.T, tlsCrt []byte, roots ...*x509.Certificate) bool {
	t.Helper()
	chain := parseChain(t, tlsCrt)
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// updateCAStatus applies change to the status of CertificateAuthority ns/name, as the
// ca-operator would write it, retrying on conflicts.
func updateCAStatus(t *testing.T, ns, name string, change func(*v1alpha1.CertificateAuthorityStatus)) {
	t.Helper()
	require.Eventually(t, func() bool {
		ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx(t), name, metav1.GetOptions{})
		require.NoError(t, err)
		change(&ca.Status)
		_, err = client.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(ctx(t), ca, metav1.UpdateOptions{})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
}

// serials returns the serial of the leaf in each Secret of names (name-tls).
func serials(t *testing.T, ns string, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		s := getSecret(t, ns, n+"-tls")
		require.NotNil(t, s)
		out[n] = leafOf(t, s).SerialNumber.String()
	}
	return out
}

// reissueRecorder records when each Secret of a namespace first holds a certificate other
// than the one it held when recording began, as a watch on the API server sees it.
type reissueRecorder struct {
	mu    sync.Mutex
	times map[string]time.Time
}

func recordReissues(t *testing.T, ns string, before map[string]string) *reissueRecorder {
	t.Helper()
	r := &reissueRecorder{times: map[string]time.Time{}}
	watchCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	w, err := env.KubeClient.CoreV1().Secrets(ns).Watch(watchCtx, metav1.ListOptions{LabelSelector: v1alpha1.LabelCertificate})
	require.NoError(t, err)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			name := s.Labels[v1alpha1.LabelCertificate]
			leaf, err := contract.ParseCertificate(s.Data[corev1.TLSCertKey])
			if err != nil || leaf.SerialNumber.String() == before[name] {
				continue
			}
			r.mu.Lock()
			if _, seen := r.times[name]; !seen {
				r.times[name] = time.Now()
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// sorted returns the recorded times, earliest first.
func (r *reissueRecorder) sorted() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, at := range r.times {
		out = append(out, at)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Before(out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestRootRotation runs a root rotation in Vault (ROTATION-DESIGN §1 steps 1–7, with the root
// token) and writes the CA's status through its phases as the ca-operator would, and checks
// the cert-operator's half: in Trusting every Secret's ca.crt becomes the bundle with the
// same certificate; in Moving every Certificate is re-issued under the new root, spaced by
// --rotation-reissue-interval, and verifies for a client of the old root, of the new root and
// of the bundle; at retirement ca.crt loses the old root in place.
func TestRootRotation(t *testing.T) {
	const n = 8
	const interval = 500 * time.Millisecond
	ns, ca := newTenant(t, "rotation", "rot")
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.TrustBundle = string(contract.EncodeCertificates(ca.Root))
	})
	op := startOperatorWith(t, ns, func(c *certoperator.Config) { c.RotationReissueInterval = interval })
	var names []string
	for i := range n {
		name := "svc-" + string(rune('a'+i))
		names = append(names, name)
		createCertificate(t, certificate(ns, name))
	}
	for _, name := range names {
		waitReady(t, ns, name, metav1.ConditionTrue, "Issued")
	}
	issued := serials(t, ns, names)
	signs := op.vault.signs.Load()
	require.Equal(t, int64(n), signs)

	// Trusting: a new root and its cross-signed certificate in Vault; the bundle holds both.
	rot, err := ca.PrepareRootRotation(ctx(t), rootVault(t), "r0badc0de", "rot Root CA")
	require.NoError(t, err)
	oldRoot, newRoot := ca.Root, rot.NewRoot
	bundle := contract.EncodeCertificates(oldRoot, newRoot)
	bundleFPs := contract.Fingerprints([]*x509.Certificate{oldRoot, newRoot})
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.TrustBundle = string(bundle)
		st.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting, Trigger: v1alpha1.RootRotationRequested,
			Tag: rot.Tag, StartTime: metav1.Now(), OldRoot: contract.CertificateStatus(ca.RootIssuerID, oldRoot),
			NewRoot: contract.CertificateStatus(rot.NewRootIssuerID, newRoot), CrossSigned: contract.CertificateStatus(rot.CrossIssuerID, rot.Cross)}
	})
	for _, name := range names {
		require.Eventually(t, func() bool {
			c := getCertificate(t, ns, name)
			return assert.ObjectsAreEqual(bundleFPs, c.Status.TrustedRootsSHA256)
		}, 30*time.Second, 100*time.Millisecond, "%s reports the bundle as its trust", name)
		s := getSecret(t, ns, name+"-tls")
		assert.Equal(t, bundle, s.Data["ca.crt"], "%s: ca.crt is the bundle", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], oldRoot), "%s: a client of the old root", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], oldRoot, newRoot), "%s: a client of the bundle", name)
		waitEvent(t, ns, name, "Normal TrustUpdated")
	}
	assert.Equal(t, issued, serials(t, ns, names), "Trusting re-issues nothing")
	assert.Equal(t, signs, op.vault.signs.Load(), "no Vault call")

	// Moving: the new root signs a new issuing CA; status.root and issuing flip together.
	require.NoError(t, ca.MoveIssuance(ctx(t), rootVault(t), rot, "rot Root CA"))
	reissues := recordReissues(t, ns, issued)
	movingAt := time.Now()
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.Root = contract.CertificateStatus(rot.NewRootIssuerID, newRoot)
		st.Issuing = contract.CertificateStatus(rot.IssuingIssuerID, rot.Issuing)
		st.RootRotation.Phase = v1alpha1.RootRotationMoving
	})
	newFP := contract.Fingerprint(newRoot)
	// The certificates were issued moments ago: the floor between issuances holds their
	// re-issue for a minute, then the bound spaces them.
	for _, name := range names {
		require.Eventually(t, func() bool {
			c := getCertificate(t, ns, name)
			return c.Status.RootFingerprintSHA256 == newFP
		}, certoperator.ReissueFloor+30*time.Second+n*interval, 200*time.Millisecond, "%s moves to the new root", name)
	}
	require.Eventually(t, func() bool { return len(reissues.sorted()) == n }, 10*time.Second, 100*time.Millisecond)
	moved := serials(t, ns, names)
	for _, name := range names {
		assert.NotEqual(t, issued[name], moved[name], "%s re-issued", name)
		s := getSecret(t, ns, name+"-tls")
		chain := parseChain(t, s.Data[corev1.TLSCertKey])
		require.Len(t, chain, 3, "%s: leaf, new issuing CA, cross-signed root", name)
		assert.Equal(t, rot.Issuing.Raw, chain[1].Raw)
		assert.Equal(t, rot.Cross.Raw, chain[2].Raw)
		assert.Equal(t, bundle, s.Data["ca.crt"], "%s: ca.crt stays the bundle", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], oldRoot), "%s: a client of the old root only", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], newRoot), "%s: a client of the new root only", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], oldRoot, newRoot), "%s: a client of the bundle", name)
		c := getCertificate(t, ns, name)
		assert.Equal(t, bundleFPs, c.Status.TrustedRootsSHA256)
	}
	times := reissues.sorted()
	for i, from := range times {
		inWindow := 0
		for _, at := range times[i:] {
			if at.Sub(from) < time.Second {
				inWindow++
			}
		}
		assert.LessOrEqual(t, inWindow, 3, "re-issues in the second from %s", from.Format(time.StampMilli))
	}
	// The first re-issue may go at once (burst 1), every later one waits its interval: the last
	// comes at least (n-1) intervals after the phase began.
	assert.GreaterOrEqual(t, times[n-1].Sub(movingAt), (n-1)*interval, "re-issues span (n-1) intervals")
	t.Logf("re-issues from %s to %s (%s)", times[0].Format(time.StampMilli), times[n-1].Format(time.StampMilli), times[n-1].Sub(times[0]))
	assert.GreaterOrEqual(t, times[n-1].Sub(times[0]), (n-2)*interval, "spaced by the interval")
	assert.Equal(t, float64(n), op.metric(t, "clusterpki_rotation_reissues_total", nil))
	signs = op.vault.signs.Load()
	assert.Equal(t, int64(2*n), signs, "one signature per Certificate to move")

	// Overlap changes nothing the cert-operator does; Retiring drops the old root from the bundle.
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.RootRotation.Phase = v1alpha1.RootRotationOverlap
	})
	newOnly := contract.EncodeCertificates(newRoot)
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.TrustBundle = string(newOnly)
		st.RootRotation.Phase = v1alpha1.RootRotationRetiring
	})
	for _, name := range names {
		require.Eventually(t, func() bool {
			c := getCertificate(t, ns, name)
			return assert.ObjectsAreEqual([]string{newFP}, c.Status.TrustedRootsSHA256)
		}, 30*time.Second, 100*time.Millisecond, "%s reports the new root alone as its trust", name)
		s := getSecret(t, ns, name+"-tls")
		assert.Equal(t, newOnly, s.Data["ca.crt"], "%s: ca.crt is the new root", name)
		assert.True(t, verifiesAgainst(t, s.Data[corev1.TLSCertKey], newRoot), "%s: a client of the new root", name)
	}
	assert.Equal(t, moved, serials(t, ns, names), "retirement re-issues nothing")
	assert.Equal(t, signs, op.vault.signs.Load(), "no Vault call")
}

// TestForgedTrustBundleIsRefused writes a CA status whose trust bundle adds a root that no
// status field names, as someone who can write certificateauthorities/status could, and
// checks that the cert-operator refuses it with a condition naming status.trustBundle and
// leaves the Secret as it was.
func TestForgedTrustBundleIsRefused(t *testing.T) {
	ns, ca := newTenant(t, "rotation-forged", "forged")
	op := startOperator(t, ns)
	createCertificate(t, certificate(ns, "web"))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	before := getSecret(t, ns, "web-tls")
	signs := op.vault.signs.Load()

	key, err := ecdsa.GenerateKey(ecdsaCurve(), randReader())
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "forged Root CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(randReader(), tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	attacker, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	updateCAStatus(t, ns, "ca", func(st *v1alpha1.CertificateAuthorityStatus) {
		st.TrustBundle = string(contract.EncodeCertificates(ca.Root, attacker))
	})

	cond := waitReady(t, ns, "web", metav1.ConditionFalse, "InvalidTrustBundle")
	assert.Contains(t, cond.Message, "status.trustBundle")
	assert.Contains(t, cond.Message, contract.Fingerprint(attacker))
	after := getSecret(t, ns, "web-tls")
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing written to the Secret")
	assert.Equal(t, signs, op.vault.signs.Load(), "nothing signed")
}
