package certificate

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/fake"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
)

// fakeVault signs CSRs with an in-memory CA, or refuses with refuse when set.
type fakeVault struct {
	mu      sync.Mutex
	root    testpki.Pair
	issuing testpki.Pair
	refuse  error
	calls   []string // "op path"
}

func newFakeVault(t *testing.T) *fakeVault {
	root := testpki.Root(t, "root")
	return &fakeVault{root: root, issuing: testpki.Intermediate(t, root, "issuing")}
}

func (v *fakeVault) Write(_ context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, op+" "+path)
	if v.refuse != nil {
		return nil, v.refuse
	}
	if op != "sign" {
		return &vaultapi.Secret{}, nil
	}
	block, _ := pem.Decode([]byte(data["csr"].(string)))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	ttl, _ := time.ParseDuration(data["ttl"].(string))
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject, DNSNames: csr.DNSNames,
		NotBefore: time.Now().Add(-30 * time.Second), NotAfter: time.Now().Add(ttl),
	}, v.issuing.Cert, csr.PublicKey, v.issuing.Key)
	if err != nil {
		return nil, err
	}
	pemOf := func(c *x509.Certificate) string { return string(contract.EncodeCertificates(c)) }
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return &vaultapi.Secret{Data: map[string]any{
		"certificate": leaf, "ca_chain": []any{pemOf(v.issuing.Cert), pemOf(v.root.Cert)},
	}}, nil
}

// fixture is a controller on fake clientsets with a fake Vault.
type fixture struct {
	c        *Controller
	kube     *kubefake.Clientset
	client   *fake.Clientset
	vault    *fakeVault
	recorder *record.FakeRecorder
}

// newFixture builds the controller over objs (API objects of either clientset) and syncs its caches.
func newFixture(t *testing.T, vault *fakeVault, objs ...runtime.Object) *fixture {
	var kubeObjs, ours []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Secret:
			kubeObjs = append(kubeObjs, o)
		default:
			ours = append(ours, o)
		}
	}
	f := &fixture{kube: kubefake.NewClientset(kubeObjs...), client: fake.NewSimpleClientset(ours...), vault: vault, recorder: record.NewFakeRecorder(20)}
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	inf := NewInformers(f.kube, f.client, "", 0)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	f.c, err = NewController(Config{Kube: f.kube, Client: f.client, Vault: vault, Informers: inf, Recorder: f.recorder, Metrics: m, Log: log})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); inf.Shutdown() })
	inf.Start(ctx)
	require.True(t, cache.WaitForCacheSync(ctx.Done(), f.c.hasSynced...))
	return f
}

// readyCA builds the Ready CertificateAuthority team-a/ca whose root is v's.
func readyCA(v *fakeVault) *v1alpha1.CertificateAuthority {
	return &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca"},
		Spec:       v1alpha1.CertificateAuthoritySpec{ClusterID: "c1"},
		Status: v1alpha1.CertificateAuthorityStatus{
			Conditions:   []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Provisioned"}},
			IssuingMount: "clusterpki/team-a/c1/issuing",
			Roles: []v1alpha1.ProvisionedRole{{Name: "server",
				SignPath: "clusterpki/team-a/c1/issuing/sign/server", RevokePath: "clusterpki/team-a/c1/issuing/revoke"}},
			Root: &v1alpha1.CACertificateStatus{FingerprintSHA256: contract.Fingerprint(v.root.Cert)},
		},
	}
}

// certificate builds the Certificate team-a/web, then applies opts.
func certificate(opts ...func(*v1alpha1.Certificate)) *v1alpha1.Certificate {
	c := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: "web-tls",
			CommonName: "web.example.com", AltNames: []string{"web.example.com"}, TTL: "1h",
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// events drains the recorded events.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) sync(t *testing.T) error {
	return f.c.sync(context.Background(), cache.ObjectName{Namespace: "team-a", Name: "web"})
}

func (f *fixture) readyCondition(t *testing.T) metav1.Condition {
	cert, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	for _, c := range cert.Status.Conditions {
		if c.Type == "Ready" {
			return c
		}
	}
	t.Fatal("no Ready condition")
	return metav1.Condition{}
}

func TestSyncIssuesIntoANewSecret(t *testing.T) {
	v := newFakeVault(t)
	f := newFixture(t, v, readyCA(v), certificate())

	require.NoError(t, f.sync(t))

	s, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.SecretTypeTLS, s.Type)
	certs, err := contract.ParseCertificates(s.Data["tls.crt"])
	require.NoError(t, err)
	require.Len(t, certs, 2)
	assert.Equal(t, v.issuing.Cert.Raw, certs[1].Raw)
	assert.Equal(t, contract.EncodeCertificates(v.root.Cert), s.Data["ca.crt"])

	ready := f.readyCondition(t)
	assert.Equal(t, metav1.ConditionTrue, ready.Status)
	assert.Equal(t, ReasonIssued, ready.Reason)
	events := f.events()
	require.Len(t, events, 1)
	assert.Regexp(t, `^Normal Issued Issued certificate [0-9a-f:]+, valid until .* \(Secret "web-tls" does not exist\)$`, events[0])
	assert.Equal(t, []string{"sign clusterpki/team-a/c1/issuing/sign/server"}, v.calls)
}

func TestSyncSignsOnTheComputedPathWhateverStatusSays(t *testing.T) {
	tests := map[string]struct {
		signPath, revokePath, issuingMount string
	}{
		"another tenant's mount":       {"clusterpki/tenant-b/prod/issuing/sign/admin", "clusterpki/tenant-b/prod/issuing/revoke", "clusterpki/tenant-b/prod/issuing"},
		"a mount outside the prefix":   {"pki-corp/sign/web", "pki-corp/revoke", "pki-corp"},
		"an ssh engine":                {"ssh/sign/admin", "sys/revoke", "ssh"},
		"a path climbing out":          {"clusterpki/../sys/revoke", "clusterpki/../sys/revoke", "clusterpki/.."},
		"no paths in status at all":    {"", "", ""},
		"the root mount of our own CA": {"clusterpki/team-a/c1/root/sign/server", "clusterpki/team-a/c1/root/revoke", "clusterpki/team-a/c1/root"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := newFakeVault(t)
			ca := readyCA(v)
			ca.Status.IssuingMount = tc.issuingMount
			ca.Status.Roles[0].SignPath, ca.Status.Roles[0].RevokePath = tc.signPath, tc.revokePath
			f := newFixture(t, v, ca, certificate())
			require.NoError(t, f.sync(t))
			assert.Equal(t, []string{"sign clusterpki/team-a/c1/issuing/sign/server"}, v.calls)
		})
	}
}

func TestVaultCallsOutsideThePrefixAreRefusedBeforeSending(t *testing.T) {
	v := newFakeVault(t)
	guard := withinPrefix{Vault: v, prefix: "clusterpki"}
	for _, path := range []string{"pki-corp/sign/web", "sys/revoke", "ssh/sign/admin", "clusterpki/../sys/revoke", "clusterpki-x/a/b/issuing/sign/r"} {
		_, err := guard.Write(context.Background(), "sign", path, map[string]any{})
		require.Error(t, err, path)
		assert.Contains(t, err.Error(), "outside the mount prefix")
	}
	assert.Empty(t, v.calls, "nothing reached Vault")
}

func TestSyncDoesNothingTwice(t *testing.T) {
	v := newFakeVault(t)
	f := newFixture(t, v, readyCA(v), certificate())
	require.NoError(t, f.sync(t))
	f.events()

	// A second controller over the state the first left: a restart.
	s, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	cert, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	restarted := newFixture(t, v, readyCA(v), cert, s)
	require.NoError(t, restarted.sync(t))

	assert.Len(t, v.calls, 1, "nothing signed after a restart")
	assert.Empty(t, restarted.events())
	for _, a := range restarted.kube.Actions() {
		assert.Contains(t, []string{"list", "watch"}, a.GetVerb(), "no Secret write: %v", a)
	}
	for _, a := range restarted.client.Actions() {
		assert.Contains(t, []string{"list", "watch"}, a.GetVerb(), "no Certificate write: %v", a)
	}
}

func TestSyncBlocked(t *testing.T) {
	v := newFakeVault(t)
	notReady := readyCA(v)
	notReady.Status.Conditions[0] = metav1.Condition{Type: "Ready", Status: "False", Reason: "Provisioning", Message: "creating mounts"}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-tls"}}

	tests := map[string]struct {
		objs        []runtime.Object
		wantReason  string
		wantMessage string
		wantEvent   string
		wantRequeue bool
	}{
		"a missing CA": {
			objs: []runtime.Object{certificate()}, wantReason: ReasonCANotFound,
			wantMessage: `CertificateAuthority "ca" does not exist in namespace "team-a"`,
			wantEvent:   `Warning CANotFound CertificateAuthority "ca" does not exist in namespace "team-a"`,
		},
		"a CA that is not Ready": {
			objs: []runtime.Object{notReady, certificate()}, wantReason: ReasonCANotReady,
			wantMessage: `CertificateAuthority "ca" is not Ready (Provisioning: creating mounts)`,
		},
		"a role the CA does not have": {
			objs:        []runtime.Object{readyCA(v), certificate(func(c *v1alpha1.Certificate) { c.Spec.Role = "client" })},
			wantReason:  ReasonRoleNotFound,
			wantMessage: `CertificateAuthority "ca" has no role "client" (it has: server)`,
		},
		"someone else's Secret, already recorded in the status": {
			objs: []runtime.Object{readyCA(v), certificate(func(c *v1alpha1.Certificate) {
				c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "False", Reason: "SecretConflict", Message: "earlier"}}
			}), foreign}, wantReason: "SecretConflict",
			wantMessage: `Secret "web-tls" exists and is not managed by this Certificate; it is left untouched`,
			wantRequeue: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			vault := newFakeVault(t)
			vault.root, vault.issuing = v.root, v.issuing
			f := newFixture(t, vault, tc.objs...)
			err := f.sync(t)
			if tc.wantRequeue {
				var requeue *controller.RequeueAfterError
				assert.ErrorAs(t, err, &requeue)
			} else {
				assert.NoError(t, err)
			}
			ready := f.readyCondition(t)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, tc.wantReason, ready.Reason)
			assert.Equal(t, tc.wantMessage, ready.Message)
			if tc.wantEvent != "" {
				assert.Equal(t, []string{tc.wantEvent}, f.events())
			}
			assert.Empty(t, vault.calls, "no Vault call")
		})
	}
}

// A Secret without our label is not in the cache: a new Certificate signs, and the create
// that finds the Secret there makes it decide again on the live one, which is left untouched.
func TestSyncFindsSomeoneElsesSecret(t *testing.T) {
	v := newFakeVault(t)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web-tls"},
		Data: map[string][]byte{"password": []byte("hunter2")}}
	f := newFixture(t, v, readyCA(v), certificate(), foreign)

	var requeue *controller.RequeueAfterError
	require.ErrorAs(t, f.sync(t), &requeue)
	assert.Equal(t, conflictRecheck, requeue.After)
	ready := f.readyCondition(t)
	assert.Equal(t, "SecretConflict", ready.Reason)
	assert.Equal(t, []string{`Warning SecretConflict Secret "web-tls" exists and is not managed by this Certificate; it is left untouched`}, f.events())
	assert.Len(t, v.calls, 1, "one certificate signed before the create found the Secret, and dropped")
	for _, a := range f.kube.Actions() {
		assert.NotContains(t, []string{"update", "patch", "delete"}, a.GetVerb(), "the foreign Secret is never written: %v", a)
	}
	got, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, foreign.Data, got.Data)

	// The recheck reads the live Secret before signing, because the status records the conflict.
	cert, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	recheck := newFixture(t, v, readyCA(v), cert, foreign)
	require.ErrorAs(t, recheck.sync(t), &requeue)
	assert.Len(t, v.calls, 1, "nothing more signed")
}

// The cached Secret keeps none of its data, only the facts the decisions read; no private key.
func TestSecretCacheKeepsNoKey(t *testing.T) {
	v := newFakeVault(t)
	f := newFixture(t, v, readyCA(v), certificate())
	require.NoError(t, f.sync(t))
	live, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)

	restarted := newFixture(t, v, readyCA(v), certificate(), live)
	cached, err := restarted.c.secrets.Secrets("team-a").Get("web-tls")
	require.NoError(t, err)
	assert.Nil(t, cached.Data, "the cache keeps no data")
	view, data, ok := restarted.c.secretFacts.data(cached)
	require.True(t, ok)
	require.Len(t, view.Data, 3)
	for k, val := range view.Data {
		assert.NotEmpty(t, live.Data[k])
		assert.Equal(t, cachedValue, val, "%s shows as present, not as its value", k)
	}
	_, isPublic := data.Key.(publicOnly)
	assert.True(t, isPublic, "only the public half of the key")
	assert.Equal(t, 1, restarted.c.secretFacts.size())
}

// The status carries the backoff: a restarted controller, with nothing in memory, waits out
// the rest of it, then tries again and doubles the next.
func TestRestartKeepsTheBackoff(t *testing.T) {
	v := newFakeVault(t)
	v.refuse = &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"common name evil.org not allowed by this role"}}
	f := newFixture(t, v, readyCA(v), certificate())
	var requeue *controller.RequeueAfterError
	require.ErrorAs(t, f.sync(t), &requeue)
	cert, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(1), cert.Status.FailedIssuanceAttempts)
	failedAt := cert.Status.LastFailureTime.Time

	restarted := newFixture(t, v, readyCA(v), cert)
	restarted.c.now = func() time.Time { return failedAt.Add(2 * time.Second) }
	require.ErrorAs(t, restarted.sync(t), &requeue)
	assert.Equal(t, firstBackoff-2*time.Second, requeue.After, "the rest of the first backoff")
	assert.Len(t, v.calls, 1, "no retry before the backoff has passed")

	restarted.c.now = func() time.Time { return failedAt.Add(firstBackoff) }
	require.ErrorAs(t, restarted.sync(t), &requeue)
	assert.Equal(t, 2*firstBackoff, requeue.After, "the second failure doubles the backoff")
	assert.Len(t, v.calls, 2)
	cert, err = restarted.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), cert.Status.FailedIssuanceAttempts)
}

func TestSyncRecordsARefusal(t *testing.T) {
	v := newFakeVault(t)
	v.refuse = &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"common name evil.org not allowed by this role"}}
	f := newFixture(t, v, readyCA(v), certificate())

	err := f.sync(t)
	var requeue *controller.RequeueAfterError
	require.ErrorAs(t, err, &requeue)
	assert.Equal(t, firstBackoff, requeue.After)

	ready := f.readyCondition(t)
	assert.Equal(t, ReasonIssuanceFailed, ready.Reason)
	assert.Equal(t, "Vault refused to sign: common name evil.org not allowed by this role", ready.Message)
	assert.Equal(t, []string{"Warning IssuanceFailed Vault refused to sign: common name evil.org not allowed by this role"}, f.events())

	// Another event for the Certificate right after does not bring an early retry: the sync
	// that recorded the failure ended only once the cache showed it.
	require.ErrorAs(t, f.sync(t), &requeue)
	assert.Len(t, v.calls, 1, "no retry before the backoff has passed")
}

// trusting returns ca in a root rotation's Trusting phase towards newRoot: the bundle holds
// both roots, the old one still signs.
func trusting(ca *v1alpha1.CertificateAuthority, old, newRoot *x509.Certificate) *v1alpha1.CertificateAuthority {
	ca = ca.DeepCopy()
	ca.Status.TrustBundle = string(contract.EncodeCertificates(old, newRoot))
	ca.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting, Trigger: v1alpha1.RootRotationRequested,
		OldRoot: contract.CertificateStatus("", old), NewRoot: contract.CertificateStatus("", newRoot)}
	return ca
}

// issuedState issues web's certificate with a fresh controller and returns the Secret and the
// Certificate as they are then.
func issuedState(t *testing.T, v *fakeVault) (*corev1.Secret, *v1alpha1.Certificate) {
	f := newFixture(t, v, readyCA(v), certificate())
	require.NoError(t, f.sync(t))
	s, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	cert, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, contract.Fingerprint(v.root.Cert), cert.Status.RootFingerprintSHA256)
	assert.Equal(t, []string{contract.Fingerprint(v.root.Cert)}, cert.Status.TrustedRootsSHA256)
	return s, cert
}

func TestSyncRefreshesTrustInPlace(t *testing.T) {
	v := newFakeVault(t)
	s, cert := issuedState(t, v)
	newRoot := testpki.Root(t, "root")
	ca := trusting(readyCA(v), v.root.Cert, newRoot.Cert)
	v.calls = nil

	f := newFixture(t, v, ca, cert, s)
	require.NoError(t, f.sync(t))
	var writes []string
	for _, a := range f.kube.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" {
			writes = append(writes, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	assert.Equal(t, []string{"get secrets", "update secrets"}, writes, "one read of the live Secret, one update")

	got, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte(ca.Status.TrustBundle), got.Data["ca.crt"], "ca.crt is the bundle, byte for byte")
	assert.Equal(t, s.Data["tls.crt"], got.Data["tls.crt"], "the certificate stays")
	assert.Equal(t, s.Data["tls.key"], got.Data["tls.key"], "the key stays")
	assert.Equal(t, s.Annotations, got.Annotations)
	assert.Empty(t, v.calls, "no Vault call")
	events := f.events()
	require.Len(t, events, 1)
	assert.Regexp(t, `^Normal TrustUpdated ca.crt in Secret "web-tls" now holds the CA's trust bundle \(2 root\(s\)\); certificate .* unchanged$`, events[0])
	status, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, contract.Fingerprints([]*x509.Certificate{v.root.Cert, newRoot.Cert}), status.Status.TrustedRootsSHA256)
	assert.Equal(t, contract.Fingerprint(v.root.Cert), status.Status.RootFingerprintSHA256)
	assert.Equal(t, cert.Status.SerialNumber, status.Status.SerialNumber)
	// Once done, the next look finds nothing to do.
	restarted := newFixture(t, v, ca, status, got)
	require.NoError(t, restarted.sync(t))
	assert.Empty(t, restarted.events())
	for _, a := range restarted.kube.Actions() {
		assert.Contains(t, []string{"list", "watch"}, a.GetVerb(), "no Secret write: %v", a)
	}
	assert.Empty(t, v.calls)
}

// A CA status whose trust bundle holds a root that the status does not name (forged, or
// written by someone other than the ca-operator) is refused: nothing signed, nothing written
// to the Secret.
func TestSyncRefusesAForgedTrustBundle(t *testing.T) {
	v := newFakeVault(t)
	s, cert := issuedState(t, v)
	attacker := testpki.Root(t, "root")
	tests := map[string]func(*v1alpha1.CertificateAuthority){
		"a root no status field names": func(ca *v1alpha1.CertificateAuthority) {
			ca.Status.TrustBundle = string(contract.EncodeCertificates(v.root.Cert, attacker.Cert))
		},
		"a bundle without status.root": func(ca *v1alpha1.CertificateAuthority) {
			ca.Status.TrustBundle = string(contract.EncodeCertificates(attacker.Cert))
			ca.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting,
				NewRoot: contract.CertificateStatus("", attacker.Cert)}
		},
		"an issuing CA posing as a root": func(ca *v1alpha1.CertificateAuthority) {
			ca.Status.TrustBundle = string(contract.EncodeCertificates(v.root.Cert, v.issuing.Cert))
			ca.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting,
				NewRoot: contract.CertificateStatus("", v.issuing.Cert)}
		},
	}
	for name, forge := range tests {
		t.Run(name, func(t *testing.T) {
			ca := readyCA(v)
			forge(ca)
			v.calls = nil
			f := newFixture(t, v, ca, cert, s)
			require.NoError(t, f.sync(t))
			ready := f.readyCondition(t)
			assert.Equal(t, ReasonInvalidTrustBundle, ready.Reason)
			assert.Contains(t, ready.Message, "status.trustBundle")
			for _, a := range f.kube.Actions() {
				assert.Contains(t, []string{"list", "watch"}, a.GetVerb(), "the Secret is not touched: %v", a)
			}
			assert.Empty(t, v.calls, "nothing signed")
		})
	}
}

// In Moving, a re-issue onto the new root waits for its slot under the rotation bound: the
// sync asks to come back when the slot is due, says so in Issuing, and signs nothing; at the
// slot it re-issues under the new root, and the metric counts it.
func TestSyncWaitsForARotationSlot(t *testing.T) {
	v := newFakeVault(t)
	s, cert := issuedState(t, v)
	oldRoot := v.root.Cert
	newRoot := testpki.Root(t, "root")
	v.root, v.issuing = newRoot, testpki.Intermediate(t, newRoot, "issuing 2")
	ca := trusting(readyCA(v), oldRoot, newRoot.Cert)
	ca.Status.RootRotation.Phase = v1alpha1.RootRotationMoving
	s.Data["ca.crt"] = []byte(ca.Status.TrustBundle) // refreshed in Trusting
	v.calls = nil

	f := newFixture(t, v, ca, cert, s)
	now := time.Now().Add(2 * time.Minute) // past the floor between issuances
	f.c.now = func() time.Time { return now }
	f.c.rotation = newRotationBound(500 * time.Millisecond)
	f.c.rotation.take(cache.ObjectName{Namespace: "team-a", Name: "other"}, now) // another Certificate took the token

	var requeue *controller.RequeueAfterError
	require.ErrorAs(t, f.sync(t), &requeue)
	assert.Equal(t, 500*time.Millisecond, requeue.After)
	assert.Empty(t, v.calls, "nothing signed before the slot")
	waiting, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	issuing := conditions.Get(waiting.Status.Conditions, v1alpha1.ConditionIssuing)
	require.NotNil(t, issuing)
	assert.Equal(t, metav1.ConditionTrue, issuing.Status)
	assert.Equal(t, "RootChanged", issuing.Reason)
	assert.Contains(t, issuing.Message, "waiting for a rotation slot at ")
	assert.True(t, conditions.IsTrue(waiting.Status.Conditions, v1alpha1.ConditionReady), "the certificate in the Secret still serves")

	now = now.Add(500 * time.Millisecond)
	require.NoError(t, f.sync(t))
	assert.Len(t, v.calls, 1, "re-issued at its slot")
	got, err := f.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte(ca.Status.TrustBundle), got.Data["ca.crt"])
	assert.Equal(t, contract.Fingerprint(newRoot.Cert), got.Annotations["clusterpki.dev/root-fingerprint-sha256"])
	assert.Equal(t, 1.0, testutil.ToFloat64(f.c.metrics.rotationReissues))
	moved, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, contract.Fingerprint(newRoot.Cert), moved.Status.RootFingerprintSHA256)
	assert.Equal(t, contract.Fingerprints([]*x509.Certificate{oldRoot, newRoot.Cert}), moved.Status.TrustedRootsSHA256)
}
