package caoperator

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/ca-operator/caoperator"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// The tests in this file drive root rotations with a token holding only the shipped ca-operator
// policy, so they also show that a rotation needs nothing beyond it. No cert-operator runs: the
// tests write the Certificates' status themselves, as the cert-operator would.

// rotating returns a CA option for a root rotation test: an overlap of one minute (the least
// the CRD allows).
func rotating(c *v1alpha1.CertificateAuthority) { c.Spec.Root.RotationOverlap = "1m" }

// newCertificate creates a Certificate of the CA caName and writes its status as the
// cert-operator would for a certificate issued under root, whose Secret's ca.crt holds trusted.
func newCertificate(t *testing.T, ns, name, caName string, root string, trusted []string) {
	t.Helper()
	cert := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: caName}, Role: "server", SecretName: name + "-tls",
			CommonName: name + ".example.com"},
	}
	_, err := client.ClusterpkiV1alpha1().Certificates(ns).Create(context.Background(), cert, metav1.CreateOptions{})
	require.NoError(t, err)
	reportCertificate(t, ns, name, func(st *v1alpha1.CertificateStatus) {
		st.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Issued",
			Message: "issued", LastTransitionTime: metav1.Now()}}
		st.RootFingerprintSHA256, st.TrustedRootsSHA256 = root, trusted
	})
}

// reportCertificate changes a Certificate's status as the cert-operator would.
func reportCertificate(t *testing.T, ns, name string, change func(*v1alpha1.CertificateStatus)) {
	t.Helper()
	require.Eventually(t, func() bool {
		cert, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		change(&cert.Status)
		_, err = client.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(context.Background(), cert, metav1.UpdateOptions{})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
}

// waitPhase waits until the CA's root rotation is at phase and returns the CA.
func waitPhase(t *testing.T, ns, name string, phase v1alpha1.RootRotationPhase, timeout time.Duration) *v1alpha1.CertificateAuthority {
	t.Helper()
	var last *v1alpha1.CertificateAuthority
	ok := assertEventually(timeout, func() bool {
		last = get(t, ns, name)
		return last.Status.RootRotation != nil && last.Status.RootRotation.Phase == phase
	})
	if !ok {
		t.Fatalf("CA %s/%s never reached root rotation phase %s; status: %+v; rotation: %+v", ns, name, phase, last.Status, last.Status.RootRotation)
	}
	return last
}

// vaultList lists a Vault path with the root token.
func vaultList(t *testing.T, path string) []string {
	t.Helper()
	s, err := rootVault.Logical().List(path)
	require.NoError(t, err, path)
	if s == nil {
		return nil
	}
	var out []string
	for _, k := range s.Data["keys"].([]any) {
		out = append(out, k.(string))
	}
	return out
}

// chainVerdicts verifies leaf with the non-self-signed elements of chain as intermediates (what
// the cert-operator puts in tls.crt) against a client holding only old, only new, and the
// bundle, and returns the three verdicts.
func chainVerdicts(leaf *x509.Certificate, chain []*x509.Certificate, old, newRoot *x509.Certificate) (oldOK, newOK, bundleOK bool) {
	intermediates, _ := contract.ChainRoots(chain)
	verify := func(roots ...*x509.Certificate) bool {
		pool, inter := x509.NewCertPool(), x509.NewCertPool()
		for _, r := range roots {
			pool.AddCert(r)
		}
		for _, c := range intermediates {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	}
	return verify(old), verify(newRoot), verify(old, newRoot)
}

// configMapTrust returns the certificates of the CA's published ConfigMap.
func configMapTrust(t *testing.T, ns, name string) (string, []*x509.Certificate) {
	t.Helper()
	cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), contract.ConfigMapName(name), metav1.GetOptions{})
	require.NoError(t, err)
	return cm.Data[contract.TrustKey], parsePEM(t, cm.Data[contract.TrustKey])
}

func TestRootRotationPhases(t *testing.T) {
	op := startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "rr", "rr", rotating))
	before := waitReady(t, ns, "rr", metav1.ConditionTrue, "Provisioned")
	mounts := mountsOf(t, ns, "rr")
	oldRoot := parsePEM(t, before.Status.TrustBundle)
	require.Len(t, oldRoot, 1, "before a rotation the bundle is the root alone")
	oldFP := contract.Fingerprint(oldRoot[0])
	require.Equal(t, before.Status.Root.FingerprintSHA256, oldFP)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		newCertificate(t, ns, n, "rr", oldFP, []string{oldFP})
	}
	// A Certificate of another CA, and one never issued, count for nothing.
	newCertificate(t, ns, "other", "elsewhere", oldFP, []string{oldFP})
	_, err := client.ClusterpkiV1alpha1().Certificates(ns).Create(context.Background(), &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pending"},
		Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "rr"}, Role: "server", SecretName: "pending-tls", CommonName: "p.example.com"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	leafBefore, chainBefore := signLeaf(t, mounts.SignPath("server"), "before.example.com")

	update(t, ns, "rr", func(c *v1alpha1.CertificateAuthority) {
		c.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "first"}
	})

	// Trusting: both roots published, in status and in the ConfigMap, the old one still signs.
	trusting := waitPhase(t, ns, "rr", v1alpha1.RootRotationTrusting, 60*time.Second)
	rot := trusting.Status.RootRotation
	assert.Equal(t, v1alpha1.RootRotationRequested, rot.Trigger)
	assert.Regexp(t, `^r[0-9a-f]{8}$`, rot.Tag)
	require.NotNil(t, rot.NewRoot)
	require.NotNil(t, rot.CrossSigned)
	assert.Equal(t, oldFP, rot.OldRoot.FingerprintSHA256)
	assert.Equal(t, oldFP, trusting.Status.Root.FingerprintSHA256, "the old root signs until issuance moves")
	bundle := parsePEM(t, trusting.Status.TrustBundle)
	require.Len(t, bundle, 2)
	bundleFPs := contract.Fingerprints(bundle)
	assert.Equal(t, contract.Fingerprints([]*x509.Certificate{oldRoot[0], bundle[1]}), bundleFPs)
	cmPEM, _ := configMapTrust(t, ns, "rr")
	assert.Equal(t, trusting.Status.TrustBundle, cmPEM, "the ConfigMap holds the bundle")
	newRoot := bundle[1]
	require.Equal(t, rot.NewRoot.FingerprintSHA256, contract.Fingerprint(newRoot))
	assert.Equal(t, int32(3), rot.Total, "only the CA's issued Certificates count")
	assert.Equal(t, vaultRead(t, mounts.Root+"/issuer/"+rot.OldRoot.IssuerID)["issuer_id"], vaultRead(t, mounts.Root+"/config/issuers")["default"])
	assert.Equal(t, "cross-"+rot.Tag, vaultRead(t, mounts.Root+"/issuer/"+rot.CrossSigned.IssuerID)["issuer_name"])
	cond := conditions.Get(trusting.Status.Conditions, v1alpha1.ConditionRootRotating)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)
	assert.Equal(t, "Trusting", cond.Reason)
	assert.Contains(t, cond.Message, "of 3 Certificates carry the trust bundle")

	// A restart in Trusting loses nothing: the phase is derived from Vault and status.
	op.stop()
	op = startOperator(t, opToken)

	// The Secrets take the bundle one by one; the count follows, and issuance waits for all.
	for i, n := range names[:2] {
		reportCertificate(t, ns, n, func(st *v1alpha1.CertificateStatus) { st.TrustedRootsSHA256 = bundleFPs })
		require.True(t, assertEventually(20*time.Second, func() bool { return get(t, ns, "rr").Status.RootRotation.Trusting == int32(i+1) }),
			"trusting never counted %d", i+1)
	}
	assert.Equal(t, v1alpha1.RootRotationTrusting, get(t, ns, "rr").Status.RootRotation.Phase)
	reportCertificate(t, ns, "c", func(st *v1alpha1.CertificateStatus) { st.TrustedRootsSHA256 = bundleFPs })

	// Moving: the new root signs, through a new issuing CA whose chain carries the cross.
	moving := waitPhase(t, ns, "rr", v1alpha1.RootRotationMoving, 30*time.Second)
	require.True(t, assertEventually(30*time.Second, func() bool {
		moving = get(t, ns, "rr")
		return moving.Status.Root.FingerprintSHA256 == contract.Fingerprint(newRoot)
	}), "status.root never became the new root")
	issuing := parsePEM(t, vaultRead(t, mounts.Issuing+"/issuer/"+moving.Status.Issuing.IssuerID+"/json")["certificate"].(string))[0]
	require.NoError(t, issuing.CheckSignatureFrom(newRoot), "status.issuing flips with status.root")
	leafMoved, chainMoved := signLeaf(t, mounts.SignPath("server"), "moved.example.com")
	oldOK, newOK, bundleOK := chainVerdicts(leafMoved, chainMoved, oldRoot[0], newRoot)
	assert.True(t, oldOK, "a client holding only the old root accepts a chain under the new root (cross-signed)")
	assert.True(t, newOK, "a client holding only the new root accepts it")
	assert.True(t, bundleOK)
	oldOK, newOK, bundleOK = chainVerdicts(leafBefore, chainBefore, oldRoot[0], newRoot)
	assert.True(t, oldOK && bundleOK, "a chain from before still verifies against the old root and the bundle")
	assert.False(t, newOK, "a chain from before does not verify against the new root alone")
	hasEvent(t, ns, "rr", "Normal IssuanceMoved")
	assert.NotContains(t, strings.Join(events(t, ns, "rr"), "\n"), "Warning RootReplaced", "the rotation's own root is no surprise")

	// Overlap once every Certificate is issued under the new root; retired a minute later.
	for _, n := range names {
		reportCertificate(t, ns, n, func(st *v1alpha1.CertificateStatus) { st.RootFingerprintSHA256 = contract.Fingerprint(newRoot) })
	}
	overlap := waitPhase(t, ns, "rr", v1alpha1.RootRotationOverlap, 30*time.Second)
	require.NotNil(t, overlap.Status.RootRotation.OverlapEnd)
	assert.WithinDuration(t, time.Now().Add(time.Minute), overlap.Status.RootRotation.OverlapEnd.Time, 15*time.Second)
	assert.Equal(t, int32(3), overlap.Status.RootRotation.Moved)
	assert.Len(t, parsePEM(t, overlap.Status.TrustBundle), 2, "both roots stay trusted through the overlap")
	// A restart in Overlap keeps its end (status holds it) and retires on time.
	op.stop()
	startOperator(t, opToken)

	done := waitPhase(t, ns, "rr", v1alpha1.RootRotationCompleted, 120*time.Second)
	assert.Equal(t, contract.Fingerprint(newRoot), done.Status.Root.FingerprintSHA256)
	require.NotNil(t, done.Status.RootRotation.CompletionTime)
	assert.Equal(t, string(contract.EncodeCertificates(newRoot)), done.Status.TrustBundle, "the bundle is the new root alone")
	cmPEM, cmCerts := configMapTrust(t, ns, "rr")
	assert.Equal(t, done.Status.TrustBundle, cmPEM)
	require.Len(t, cmCerts, 1)
	cond = conditions.Get(done.Status.Conditions, v1alpha1.ConditionRootRotating)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, "Completed", cond.Reason)

	// Vault: one root issuer and one key in the root mount, both the new root's and default.
	rootIssuers, rootKeys := vaultList(t, mounts.Root+"/issuers"), vaultList(t, mounts.Root+"/keys")
	require.Len(t, rootIssuers, 1)
	require.Len(t, rootKeys, 1)
	newIssuer := vaultRead(t, mounts.Root+"/issuer/"+rootIssuers[0])
	assert.Equal(t, "root-"+rot.Tag, newIssuer["issuer_name"])
	assert.Equal(t, rootKeys[0], newIssuer["key_id"])
	assert.Equal(t, rootIssuers[0], vaultRead(t, mounts.Root+"/config/issuers")["default"])
	assert.Equal(t, rootKeys[0], vaultRead(t, mounts.Root+"/config/keys")["default"])
	// The issuing mount: no old root, no cross; the old issuing CA signs only CRLs.
	for _, id := range vaultList(t, mounts.Issuing+"/issuers") {
		iss := vaultRead(t, mounts.Issuing+"/issuer/"+id)
		cert := parsePEM(t, iss["certificate"].(string))[0]
		fp := contract.Fingerprint(cert)
		assert.NotEqual(t, oldFP, fp, "the old root left the issuing mount")
		assert.NotEqual(t, rot.CrossSigned.FingerprintSHA256, fp, "the cross left the issuing mount")
		if cert.CheckSignatureFrom(oldRoot[0]) == nil {
			assert.NotContains(t, iss["usage"], "issuing-certificates", "the old issuing CA no longer issues")
		}
	}
	leafAfter, chainAfter := signLeaf(t, mounts.SignPath("server"), "after.example.com")
	oldOK, newOK, _ = chainVerdicts(leafAfter, chainAfter, oldRoot[0], newRoot)
	assert.False(t, oldOK, "after retirement a new chain carries no cross")
	assert.True(t, newOK)
	_, newOK, _ = chainVerdicts(leafMoved, chainMoved, oldRoot[0], newRoot)
	assert.True(t, newOK, "a chain issued in Moving (with the cross) still verifies against the new root")
	for _, e := range []string{"Normal RootRotationStarted", "Normal TrustPublished", "Normal RootRotationOverlap", "Normal RootRetired"} {
		hasEvent(t, ns, "rr", e)
	}

	// Answered once: the annotation stays, nothing more happens; the shipped policy still
	// refuses revoking or exporting the new root and signing through an issuer reference.
	time.Sleep(4 * time.Second)
	assert.Equal(t, done.Status.RootRotation.CompletionTime, get(t, ns, "rr").Status.RootRotation.CompletionTime)
	assert.Len(t, vaultList(t, mounts.Root+"/issuers"), 1)
	assertRefused(t, tokenClient(t, "ca-operator.hcl"), map[string]attempt{
		"revoke the new root":                    {path: mounts.Root + "/issuer/root-" + rot.Tag + "/revoke"},
		"sign an intermediate by issuer ref":     {path: mounts.Root + "/issuer/root-" + rot.Tag + "/sign-intermediate"},
		"rotate the root exporting its key":      {path: mounts.Root + "/root/rotate/exported"},
		"import a key and certificate bundle":    {path: mounts.Root + "/issuers/import/bundle", data: map[string]any{"pem_bundle": "x"}},
		"sign a cross verbatim with the new key": {path: mounts.Root + "/issuer/root-" + rot.Tag + "/sign-verbatim"},
	})
}

func TestRootRotationRequestWaitsForFloor(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "fl", "fl", rotating))
	waitReady(t, ns, "fl", metav1.ConditionTrue, "Provisioned")
	update(t, ns, "fl", func(c *v1alpha1.CertificateAuthority) {
		c.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "one"}
	})
	// No Certificates: straight to Overlap; a second request meanwhile waits for it.
	waitPhase(t, ns, "fl", v1alpha1.RootRotationOverlap, 60*time.Second)
	first := get(t, ns, "fl").Status.RootRotation.Tag
	update(t, ns, "fl", func(c *v1alpha1.CertificateAuthority) {
		c.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "two"}
	})
	hasEvent(t, ns, "fl", "Normal RootRotationDeferred")
	done := waitPhase(t, ns, "fl", v1alpha1.RootRotationCompleted, 120*time.Second)
	assert.Equal(t, first, done.Status.RootRotation.Tag, "the running rotation finishes first")
	// Then the second waits for the floor after the completion.
	require.True(t, assertEventually(30*time.Second, func() bool {
		for _, e := range events(t, ns, "fl") {
			if strings.HasPrefix(e, "Normal RootRotationDeferred") && strings.Contains(e, "at most once per") {
				return true
			}
		}
		return false
	}), "the held request says until when; events: %v", events(t, ns, "fl"))
	assert.Equal(t, first, get(t, ns, "fl").Status.RootRotation.Tag)
	assert.Greater(t, caoperator.RotationFloor, time.Minute)
}

// lostAnswers is a VaultClient whose k-th write (Write, WriteIdempotent or Delete) after it is
// armed reaches Vault and takes effect, but whose answer is lost: the caller gets a connection
// error. It counts every write made while armed, and the successful root rotations.
type lostAnswers struct {
	caoperator.VaultClient
	k int

	mu       sync.Mutex
	armed    bool
	writes   []string
	rotates  int
	injected string
}

// arm starts counting writes.
func (l *lostAnswers) arm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = true
}

// after counts a write that Vault answered with err, and loses its answer when it is the k-th.
func (l *lostAnswers) after(op, path string, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.armed {
		return err
	}
	l.writes = append(l.writes, op+" "+path)
	if op == "rotate-root" && err == nil {
		l.rotates++
	}
	if len(l.writes) == l.k && err == nil {
		l.injected = op + " " + path
		return fmt.Errorf("vault write %s: %w", path, &url.Error{Op: "Put", URL: "vault/" + path,
			Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}})
	}
	return err
}

func (l *lostAnswers) Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	s, err := l.VaultClient.Write(ctx, op, path, data)
	return s, l.after(op, path, err)
}

func (l *lostAnswers) WriteIdempotent(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	s, err := l.VaultClient.WriteIdempotent(ctx, op, path, data)
	return s, l.after(op, path, err)
}

func (l *lostAnswers) Delete(ctx context.Context, op, path string) error {
	return l.after(op, path, l.VaultClient.Delete(ctx, op, path))
}

// TestRootRotationSurvivesLostAnswers rotates one CA per k, each under its own ca-operator
// (limited to the CA's namespace) whose k-th Vault write of the rotation takes effect but
// whose answer is lost; k = 0 loses nothing and measures how many writes a rotation makes.
// Every CA ends with exactly one new root: one successful root/rotate/internal, one issuer and
// one key in the root mount.
func TestRootRotationSurvivesLostAnswers(t *testing.T) {
	const maxK = 24
	type run struct {
		ns    string
		vault *lostAnswers
	}
	runs := make([]run, maxK+1)
	for k := range runs {
		ns := namespace(t)
		lost := &lostAnswers{k: k}
		startOperatorWith(t, opToken, func(cfg *caoperator.Config) {
			lost.VaultClient = cfg.Vault
			cfg.Vault = lost
			cfg.Namespace = ns
		})
		create(t, newCA(ns, "lost", "lost", rotating))
		runs[k] = run{ns: ns, vault: lost}
	}
	for _, r := range runs {
		waitReady(t, r.ns, "lost", metav1.ConditionTrue, "Provisioned")
	}
	// Settle: a Ready CA in steady state writes nothing to Vault, so every counted write is
	// the rotation's.
	time.Sleep(2 * time.Second)
	for _, r := range runs {
		r.vault.arm()
		update(t, r.ns, "lost", func(c *v1alpha1.CertificateAuthority) {
			c.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "lost-answers"}
		})
	}
	var wg sync.WaitGroup
	for k, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := assertEventually(4*time.Minute, func() bool {
				c, err := client.ClusterpkiV1alpha1().CertificateAuthorities(r.ns).Get(context.Background(), "lost", metav1.GetOptions{})
				return err == nil && c.Status.RootRotation != nil && c.Status.RootRotation.Phase == v1alpha1.RootRotationCompleted
			})
			assert.True(t, ok, "k=%d (lost answer of %q): the rotation never completed", k, r.vault.injected)
		}()
	}
	wg.Wait()

	clean := runs[0].vault
	t.Logf("a rotation of a CA without Certificates makes %d Vault writes: %s", len(clean.writes), strings.Join(clean.writes, "; "))
	assert.LessOrEqual(t, len(clean.writes), maxK, "raise maxK so that every write of a rotation has its answer lost once")
	for k, r := range runs {
		m := mountsOf(t, r.ns, "lost")
		c := get(t, r.ns, "lost")
		issuers, keys := vaultList(t, m.Root+"/issuers"), vaultList(t, m.Root+"/keys")
		what := fmt.Sprintf("k=%d (lost answer of %q)", k, r.vault.injected)
		assert.Equal(t, 1, r.vault.rotates, "%s: exactly one new root was made", what)
		if assert.Len(t, issuers, 1, what) && assert.Len(t, keys, 1, what) {
			assert.Equal(t, "root-"+c.Status.RootRotation.Tag, vaultRead(t, m.Root+"/issuer/"+issuers[0])["issuer_name"], what)
			assert.Equal(t, issuers[0], c.Status.Root.IssuerID, what)
		}
		trust := parsePEM(t, c.Status.TrustBundle)
		if assert.Len(t, trust, 1, what) {
			assert.Equal(t, c.Status.Root.FingerprintSHA256, contract.Fingerprint(trust[0]), what)
		}
		if k > 0 && k <= len(clean.writes) {
			assert.NotEmpty(t, r.vault.injected, "%s: an answer was lost", what)
		}
		assert.False(t, slices.ContainsFunc(c.Status.Conditions, func(cond metav1.Condition) bool {
			return cond.Type == v1alpha1.ConditionReady && cond.Status != metav1.ConditionTrue
		}), "%s: Ready again after the rotation", what)
	}
}

func TestRootRotationStartsAutomatically(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	// A root of two hours rotated when less than 119 minutes are left: at once.
	create(t, newCA(ns, "auto", "auto", rotating, func(c *v1alpha1.CertificateAuthority) {
		c.Spec.Root.TTL = "2h"
		c.Spec.Root.RotateBefore = "119m"
		c.Spec.Issuing.TTL = "1h"
		c.Spec.Issuing.RotateBefore = "20m"
	}))
	done := waitPhase(t, ns, "auto", v1alpha1.RootRotationCompleted, 240*time.Second)
	rot := done.Status.RootRotation
	assert.Equal(t, v1alpha1.RootRotationAutomatic, rot.Trigger)
	assert.Equal(t, "a"+rot.OldRoot.FingerprintSHA256[:8], rot.Tag, "an automatic rotation is named after the root it replaces")
	assert.Equal(t, rot.NewRoot.FingerprintSHA256, done.Status.Root.FingerprintSHA256)
	assert.Len(t, vaultList(t, mountsOf(t, ns, "auto").Root+"/issuers"), 1)
	// The new root is due at once too, but waits for the floor after the last completion.
	hasEvent(t, ns, "auto", "Normal RootRotationDeferred")
	assert.Equal(t, rot.Tag, get(t, ns, "auto").Status.RootRotation.Tag)
}
