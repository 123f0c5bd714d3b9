package ca

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/fake"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
)

// The mounts of the CertificateAuthority team-a/ca that newCA builds.
const (
	rootMount    = "clusterpki/team-a/c1/root"
	issuingMount = "clusterpki/team-a/c1/issuing"
)

// fixture is a controller on fake clientsets with a fake Vault, driven through its real sync.
type fixture struct {
	c        *Controller
	kube     *kubefake.Clientset
	client   *fake.Clientset
	vault    *fakeVault
	recorder *record.FakeRecorder
}

// newFixture builds the controller over objs (ConfigMaps and CertificateAuthorities) and v,
// and syncs its caches.
func newFixture(t *testing.T, v *fakeVault, objs ...runtime.Object) *fixture {
	t.Helper()
	var kubeObjs, ours []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*corev1.ConfigMap); ok {
			kubeObjs = append(kubeObjs, o)
		} else {
			ours = append(ours, o)
		}
	}
	f := &fixture{kube: kubefake.NewClientset(kubeObjs...), client: fake.NewSimpleClientset(ours...), vault: v,
		recorder: record.NewFakeRecorder(50)}
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	inf := NewInformers(f.kube, f.client, "", 0)
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	f.c, err = NewController(Config{Log: log, Kube: f.kube, Client: f.client, Vault: v, Recorder: f.recorder,
		Informers: inf, Metrics: m, VaultPublicAddr: "https://vault.example:8200"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); inf.Shutdown() })
	inf.Start(ctx)
	require.True(t, cache.WaitForCacheSync(ctx.Done(), f.c.hasSynced...))
	return f
}

// newCA builds the CertificateAuthority team-a/ca (clusterID c1, roles server and client), then
// applies opts.
func newCA(opts ...func(*v1alpha1.CertificateAuthority)) *v1alpha1.CertificateAuthority {
	ca := &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ca", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: "c1",
			Root:      v1alpha1.RootCASpec{CommonName: "c1 root", TTL: "87600h", KeyType: "ec"},
			Issuing:   v1alpha1.IssuingCASpec{TTL: "8760h", KeyType: "ec"},
			Roles: []v1alpha1.RoleSpec{
				{Name: "server", AllowedDomains: []string{"svc.cluster.local"}, AllowSubdomains: true},
				{Name: "client", AllowAnyName: true, ExtKeyUsages: []v1alpha1.ExtKeyUsage{"ClientAuth"}},
			},
		},
	}
	for _, o := range opts {
		o(ca)
	}
	return ca
}

// provisioned returns a fixture over a CA that a first sync provisioned in v, as a restarted
// controller finds it: its events drained and v's calls forgotten. change, when given, is
// applied to the CA first, as a user's edit.
func provisioned(t *testing.T, v *fakeVault, change func(*v1alpha1.CertificateAuthority)) *fixture {
	t.Helper()
	first := newFixture(t, v, newCA())
	require.NoError(t, first.sync())
	return first.restart(t, change)
}

// restart returns a new controller over the objects f's clientsets hold now and the same Vault,
// with change (when not nil) applied to the CA first.
func (f *fixture) restart(t *testing.T, change func(*v1alpha1.CertificateAuthority)) *fixture {
	t.Helper()
	ca := f.get(t)
	if change != nil {
		change(ca)
	}
	objs := []runtime.Object{ca}
	if cm, err := f.kube.CoreV1().ConfigMaps("team-a").Get(context.Background(), contract.ConfigMapName("ca"), metav1.GetOptions{}); err == nil {
		objs = append(objs, cm)
	}
	f.vault.forget()
	return newFixture(t, f.vault, objs...)
}

// sync syncs team-a/ca.
func (f *fixture) sync() error {
	return f.c.sync(context.Background(), cache.ObjectName{Namespace: "team-a", Name: "ca"})
}

// get returns team-a/ca as the API server has it.
func (f *fixture) get(t *testing.T) *v1alpha1.CertificateAuthority {
	t.Helper()
	ca, err := f.client.ClusterpkiV1alpha1().CertificateAuthorities("team-a").Get(context.Background(), "ca", metav1.GetOptions{})
	require.NoError(t, err)
	return ca
}

// settle waits until the cache shows team-a/ca as the API server has it, as it does before the
// next sync in a running controller.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	live := f.get(t)
	require.Eventually(t, func() bool {
		cached, err := f.c.caLister.CertificateAuthorities("team-a").Get("ca")
		return err == nil && apiequality.Semantic.DeepEqual(cached, live)
	}, 5*time.Second, 5*time.Millisecond)
}

// ready returns the Ready condition of team-a/ca.
func (f *fixture) ready(t *testing.T) metav1.Condition {
	t.Helper()
	cond := conditions.Get(f.get(t).Status.Conditions, v1alpha1.ConditionReady)
	require.NotNil(t, cond, "no Ready condition")
	return *cond
}

// events drains the recorded events.
func (f *fixture) events() []string {
	var out []string
	for len(f.recorder.Events) > 0 {
		out = append(out, <-f.recorder.Events)
	}
	return out
}

// apiWrites returns the writes the controller sent to the API server.
func (f *fixture) apiWrites() []string {
	var out []string
	for _, a := range append(f.kube.Actions(), f.client.Actions()...) {
		if v := a.GetVerb(); v != "list" && v != "watch" && v != "get" {
			out = append(out, v+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

func TestSyncProvisionsANewCA(t *testing.T) {
	v := newFakeVault()
	f := newFixture(t, v, newCA())

	require.NoError(t, f.sync())

	assert.Empty(t, v.reads(), "a new CA's mounts are enabled and filled without reading anything first")
	ca := f.get(t)
	assert.Empty(t, ca.Finalizers, "a CA that retains its mounts (the default) has nothing to wait for at deletion")
	ready := f.ready(t)
	assert.Equal(t, metav1.ConditionTrue, ready.Status)
	assert.Equal(t, contract.ReasonProvisioned, ready.Reason)
	assert.Equal(t, "root and issuing CA in Vault mounts "+rootMount+" and "+issuingMount+", 2 role(s)", ready.Message)
	assert.Equal(t, int64(1), ca.Status.ObservedGeneration)
	assert.Equal(t, ReasonRootValid, conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootExpiring).Reason)
	assert.Equal(t, rootMount, ca.Status.RootMount)
	assert.Equal(t, issuingMount, ca.Status.IssuingMount)

	// Status names the root and the issuing CA that Vault holds as the mounts' defaults.
	root := v.mounts[rootMount].issuers[v.mounts[rootMount].defaultIssuer]
	issuing := v.mounts[issuingMount].issuers[v.mounts[issuingMount].defaultIssuer]
	assert.Equal(t, contract.CertificateStatus(root.id, root.cert), ca.Status.Root)
	assert.Equal(t, contract.CertificateStatus(issuing.id, issuing.cert), ca.Status.Issuing)
	require.NoError(t, issuing.cert.CheckSignatureFrom(root.cert), "the issuing CA is signed by the root")
	assert.NotEmpty(t, issuing.keyID, "the issuing CA's key was made in its mount")
	assert.Equal(t, []v1alpha1.ProvisionedRole{
		{Name: "client", SignPath: issuingMount + "/sign/client", RevokePath: issuingMount + "/revoke"},
		{Name: "server", SignPath: issuingMount + "/sign/server", RevokePath: issuingMount + "/revoke"},
	}, ca.Status.Roles)
	assert.Equal(t, ownerDescription("team-a", "ca", "uid-1"), v.mounts[rootMount].description)
	assert.Len(t, v.mounts[issuingMount].roles, 2)
	assert.Empty(t, v.mounts[rootMount].roles, "roles never sit on the root")
	assert.Equal(t, []any{"https://vault.example:8200/v1/" + issuingMount + "/ca"},
		v.mounts[issuingMount].config["urls"]["issuing_certificates"])

	// The root is published for workloads.
	cm, err := f.kube.CoreV1().ConfigMaps("team-a").Get(context.Background(), "ca-ca", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, string(contract.EncodeCertificates(root.cert)), cm.Data[contract.TrustKey])
	assert.Equal(t, map[string]string{v1alpha1.LabelCertificateAuthority: "ca", v1alpha1.LabelClusterID: "c1",
		v1alpha1.LabelManagedBy: contract.ManagedByValue}, cm.Labels)
	assert.Equal(t, "ca", cm.OwnerReferences[0].Name)
	assert.Equal(t, "ca-ca", ca.Status.ConfigMapName)

	events := f.events()
	require.Len(t, events, 1, "the Provisioned event names what was made: %v", events)
	assert.Regexp(t, `^Normal Provisioned CA ready to issue: root [0-9a-f:]+ in Vault mount `+rootMount+
		`, issuing CA [0-9a-f:]+ in `+issuingMount+`, 2 role\(s\)$`, events[0])
}

func TestSyncLeavesAConvergedCAAlone(t *testing.T) {
	f := provisioned(t, newFakeVault(), nil)

	require.NoError(t, f.sync())

	assert.Empty(t, f.vault.writes(), "nothing written to Vault")
	assert.Empty(t, f.apiWrites(), "nothing written to the API server")
	assert.Empty(t, f.events())
}

func TestSyncAppliesARoleChange(t *testing.T) {
	f := provisioned(t, newFakeVault(), func(ca *v1alpha1.CertificateAuthority) {
		ca.Generation = 2
		ca.Spec.Roles = ca.Spec.Roles[:1]
		ca.Spec.Roles[0].MaxTTL = "2h"
	})

	require.NoError(t, f.sync())

	assert.Equal(t, []string{
		"Normal RoleUpdated Vault role " + issuingMount + "/roles/server now matches spec",
		"Normal RoleDeleted deleted Vault role " + issuingMount + "/roles/client, no longer in spec",
	}, f.events())
	assert.Equal(t, []string{
		"write write-role " + issuingMount + "/roles/server",
		"delete delete-role " + issuingMount + "/roles/client",
	}, f.vault.writes(), "only the roles change")
	roles := f.vault.mounts[issuingMount].roles
	require.Contains(t, roles, "server")
	assert.NotContains(t, roles, "client")
	assert.Equal(t, "7200", roles["server"]["max_ttl"].(interface{ String() string }).String())
	ca := f.get(t)
	assert.Equal(t, int64(2), ca.Status.ObservedGeneration)
	assert.Equal(t, []v1alpha1.ProvisionedRole{{Name: "server", SignPath: issuingMount + "/sign/server", RevokePath: issuingMount + "/revoke"}}, ca.Status.Roles)
}

func TestSyncRefusesAMountItDoesNotOwn(t *testing.T) {
	tests := map[string]struct {
		mount       *fakeMount
		wantMessage string
	}{
		"another CertificateAuthority's mount": {
			mount:       newFakeMount("pki", ownerDescription("team-a", "other", "uid-9"), 0),
			wantMessage: `Vault mount ` + rootMount + ` belongs to CertificateAuthority team-a/other; clusterID "c1" is taken in namespace team-a`,
		},
		"a mount made by hand": {
			mount: newFakeMount("pki", "team pki", 0),
			wantMessage: `Vault mount ` + rootMount + ` exists but is not marked for clusterpki; ` +
				`an administrator moves an existing PKI under clusterpki as deploy/vault/README.md describes`,
		},
		"a mount of another engine": {
			mount:       newFakeMount("kv", ownerDescription("team-a", "ca", "uid-1"), 0),
			wantMessage: `Vault mount ` + rootMount + ` exists and is a "kv" engine, not pki`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := newFakeVault()
			v.mounts[rootMount] = tc.mount
			f := newFixture(t, v, newCA())

			var requeue *controller.RequeueAfterError
			require.ErrorAs(t, f.sync(), &requeue)
			assert.Equal(t, conflictRecheck, requeue.After, "a person must act: look again now and then")

			ready := f.ready(t)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, ReasonMountConflict, ready.Reason)
			assert.Equal(t, tc.wantMessage, ready.Message)
			assert.Nil(t, f.get(t).Status.Root, "never handed someone else's CA")
			assert.Equal(t, []string{"Warning MountConflict " + tc.wantMessage}, f.events())
			assert.Equal(t, []string{"write enable-mount sys/mounts/" + rootMount}, v.writes(),
				"only the attempt to enable the mount, which Vault refused")
			assert.Empty(t, tc.mount.issuers, "the mount is left alone")

			// The recheck finds the same conflict and does not warn again.
			f.settle(t)
			require.ErrorAs(t, f.sync(), &requeue)
			assert.Empty(t, f.events())
		})
	}
}

func TestSyncRequiresAMigration(t *testing.T) {
	v := newFakeVault()
	legacy := newCA(func(ca *v1alpha1.CertificateAuthority) {
		ca.Status = v1alpha1.CertificateAuthorityStatus{RootMount: "pki-legacy-root", IssuingMount: "pki-legacy",
			Root: &v1alpha1.CACertificateStatus{SerialNumber: "01", FingerprintSHA256: "ab12"}}
	})
	f := newFixture(t, v, legacy)

	var requeue *controller.RequeueAfterError
	require.ErrorAs(t, f.sync(), &requeue)

	ready := f.ready(t)
	assert.Equal(t, ReasonMigrationRequired, ready.Reason)
	assert.Contains(t, ready.Message, "the root CA (SHA-256 ab12) is in Vault mount pki-legacy-root")
	assert.Equal(t, []string{"Warning MigrationRequired " + ready.Message}, f.events())
	assert.Empty(t, v.writes(), "no new root is made")
	assert.Equal(t, "pki-legacy-root", f.get(t).Status.RootMount, "status still names where the root is")
}

// A CA whose syncs keep failing for one reason warns once, when it starts, not on every retry.
func TestSyncWarnsOnceWhileVaultIsDown(t *testing.T) {
	f := provisioned(t, newFakeVault(), nil)
	f.vault.setDown(true)

	err := f.sync()
	require.Error(t, err)
	var requeue *controller.RequeueAfterError
	assert.False(t, errors.As(err, &requeue), "a rate-limited retry, not a slow recheck")
	ready := f.ready(t)
	assert.Equal(t, ReasonVaultUnavailable, ready.Reason)
	assert.Equal(t, "read mount "+rootMount+": vault read sys/mounts/"+rootMount+": cannot reach Vault: connection refused", ready.Message,
		"Vault's address never appears in status")
	assert.Equal(t, []string{"Warning VaultUnavailable " + ready.Message}, f.events())

	for range 3 {
		f.settle(t)
		require.Error(t, f.sync())
		assert.Empty(t, f.events(), "no Warning on a retry that fails for the same reason")
	}

	f.vault.setDown(false)
	f.settle(t)
	require.NoError(t, f.sync())
	assert.Equal(t, contract.ReasonProvisioned, f.ready(t).Reason)
	events := f.events()
	require.Len(t, events, 1)
	assert.Regexp(t, `^Normal Provisioned CA ready to issue`, events[0])
	assert.Empty(t, f.vault.writes(), "nothing in Vault needed repair")
}

func TestSyncRotatesTheIssuingCAOnRequest(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, func(ca *v1alpha1.CertificateAuthority) {
		ca.Annotations = map[string]string{v1alpha1.AnnotationRotateIssuer: "2026-11-28T08:00:00Z"}
	})
	before := f.get(t).Status

	require.NoError(t, f.sync())

	after := f.get(t).Status
	assert.NotEqual(t, before.Issuing.IssuerID, after.Issuing.IssuerID)
	assert.Equal(t, before.Root, after.Root, "the root never changes")
	assert.Equal(t, []string{"Normal IssuerRotated replaced issuing CA " + before.Issuing.IssuerID + " with " + after.Issuing.IssuerID + " in " +
		issuingMount + " because rotation was requested with the clusterpki.dev/rotate-issuer annotation; the old one stays for CRLs until it expires"},
		f.events())
	assert.Contains(t, v.mounts[issuingMount].issuers, before.Issuing.IssuerID, "the old issuing CA stays for CRLs")

	// The request is answered once.
	v.forget()
	f.settle(t)
	require.NoError(t, f.sync())
	assert.Empty(t, v.writes())
	assert.Empty(t, f.events())
}

func TestSyncRepairsMountsRemovedBehindItsBack(t *testing.T) {
	t.Run("the root mount", func(t *testing.T) {
		v := newFakeVault()
		f := provisioned(t, v, nil)
		before := f.get(t).Status.Root
		delete(v.mounts, rootMount)

		require.NoError(t, f.sync())

		after := f.get(t).Status
		assert.NotEqual(t, before.FingerprintSHA256, after.Root.FingerprintSHA256)
		events := f.events()
		require.Len(t, events, 2, "%v", events)
		assert.Equal(t, "Warning RootReplaced the root CA in "+rootMount+" was missing and has been generated again: fingerprint "+
			after.Root.FingerprintSHA256+" replaces "+before.FingerprintSHA256+"; consumers must trust the new ca.crt", events[0])
		assert.Regexp(t, `^Normal IssuerRotated .* because the issuing CA was not signed by the current root;`, events[1])
		cm, err := f.kube.CoreV1().ConfigMaps("team-a").Get(context.Background(), "ca-ca", metav1.GetOptions{})
		require.NoError(t, err)
		root, err := contract.ParseCertificate([]byte(cm.Data[contract.TrustKey]))
		require.NoError(t, err)
		assert.Equal(t, after.Root.FingerprintSHA256, contract.Fingerprint(root), "the new root is published")
	})
	t.Run("the issuing mount", func(t *testing.T) {
		v := newFakeVault()
		f := provisioned(t, v, nil)
		before := f.get(t).Status
		delete(v.mounts, issuingMount)

		require.NoError(t, f.sync())

		after := f.get(t).Status
		assert.Equal(t, before.Root, after.Root)
		assert.Equal(t, []string{
			"Normal IssuerCreated created issuing CA " + after.Issuing.IssuerID + " in " + issuingMount,
			"Normal RoleUpdated Vault role " + issuingMount + "/roles/server now matches spec",
			"Normal RoleUpdated Vault role " + issuingMount + "/roles/client now matches spec",
		}, f.events())
		assert.Len(t, v.mounts[issuingMount].roles, 2)
	})
}

// The finalizer follows the deletionPolicy: only a CA whose deletion must clean Vault up waits
// for the ca-operator.
func TestFinalizerFollowsTheDeletionPolicy(t *testing.T) {
	v := newFakeVault()
	f := newFixture(t, v, newCA())
	require.NoError(t, f.sync())
	assert.Empty(t, f.get(t).Finalizers, "Retain")

	f = f.restart(t, func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete })
	require.NoError(t, f.sync())
	assert.Equal(t, []string{Finalizer}, f.get(t).Finalizers, "Delete")

	f = f.restart(t, func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyRetain
		ca.Finalizers = append(ca.Finalizers, "example.com/someone-elses")
	})
	require.NoError(t, f.sync())
	assert.Equal(t, []string{"example.com/someone-elses"}, f.get(t).Finalizers, "back to Retain: ours goes, others stay")
}

func TestSyncFinalizesADeletedCA(t *testing.T) {
	tests := map[string]struct {
		policy      v1alpha1.DeletionPolicy
		wantEvents  []string
		wantMounted bool
	}{
		"Delete unmounts both mounts": {
			policy:     v1alpha1.DeletionPolicyDelete,
			wantEvents: []string{"Normal MountsDeleted deleted Vault mounts " + rootMount + " and " + issuingMount},
		},
		"Retain keeps them": {policy: v1alpha1.DeletionPolicyRetain, wantMounted: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := newFakeVault()
			first := newFixture(t, v, newCA(func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = tc.policy }))
			require.NoError(t, first.sync())
			f := first.restart(t, func(ca *v1alpha1.CertificateAuthority) { ca.DeletionTimestamp = &metav1.Time{Time: time.Now()} })

			require.NoError(t, f.sync())

			assert.Equal(t, tc.wantEvents, f.events())
			assert.Equal(t, tc.wantMounted, v.mounts[rootMount] != nil, "root mount")
			assert.Equal(t, tc.wantMounted, v.mounts[issuingMount] != nil, "issuing mount")
			ca, err := f.client.ClusterpkiV1alpha1().CertificateAuthorities("team-a").Get(context.Background(), "ca", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				require.NoError(t, err)
				assert.Empty(t, ca.Finalizers, "the CertificateAuthority is let go")
			}
		})
	}
}

// TestSyncNamesAnIssuingCAPastOneLeftBySyncCutShort: a sync cut short after naming its new
// issuing CA (not yet the default) leaves that name taken; the next sync in the same second
// makes the issuing CA again and names it a second later instead of failing the CA.
func TestSyncNamesAnIssuingCAPastOneLeftBySyncCutShort(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, func(ca *v1alpha1.CertificateAuthority) {
		ca.Annotations = map[string]string{v1alpha1.AnnotationRotateIssuer: "now"}
	})
	now := f.c.now()
	m := v.mounts[issuingMount]
	taken := issuerName(f.get(t), now)
	for _, iss := range m.issuers {
		if iss.id != m.defaultIssuer && iss.name == "" {
			iss.name = taken // the imported root stands in for the issuing CA left behind
			break
		}
	}
	require.NotNil(t, m.issuerByRef(taken))
	f.c.now = func() time.Time { return now }
	require.NoError(t, f.sync())
	def := m.issuerByRef(m.defaultIssuer)
	assert.Equal(t, laterIssuerName(taken), def.name, "the new issuing CA takes the next second's name")
}
