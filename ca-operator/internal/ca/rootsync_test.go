package ca

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// requestRootRotation is a user's edit asking for a root rotation, with a one-minute overlap.
func requestRootRotation(ca *v1alpha1.CertificateAuthority) {
	ca.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "now"}
	ca.Spec.Root.RotationOverlap = "1m"
}

// reasons returns the reasons of events, in order.
func reasons(events []string) []string {
	var out []string
	for _, e := range events {
		fields := strings.Fields(e)
		out = append(out, fields[0]+" "+fields[1])
	}
	return out
}

func TestSyncRotatesTheRootOfACAWithoutCertificates(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, requestRootRotation)
	oldRoot := f.get(t).Status.Root

	require.NoError(t, f.sync())

	// Nothing to wait for: every phase up to Overlap in one sync, the new root signing.
	ca := f.get(t)
	rot := ca.Status.RootRotation
	require.NotNil(t, rot)
	assert.Equal(t, v1alpha1.RootRotationOverlap, rot.Phase)
	assert.Equal(t, rootRequestTag(ca), rot.Tag)
	assert.Equal(t, oldRoot.FingerprintSHA256, rot.OldRoot.FingerprintSHA256)
	assert.Equal(t, rot.NewRoot.FingerprintSHA256, ca.Status.Root.FingerprintSHA256)
	require.NotNil(t, rot.OverlapEnd)
	r := v.mounts[rootMount]
	newRoot := r.issuerByRef("root-" + rot.Tag)
	require.NotNil(t, newRoot)
	assert.Equal(t, newRoot.id, r.defaultIssuer)
	assert.Equal(t, newRoot.keyID, r.defaultKey, "the default key moves with the default issuer")
	require.NotNil(t, r.issuerByRef("cross-"+rot.Tag))
	issuing := v.mounts[issuingMount].issuers[v.mounts[issuingMount].defaultIssuer]
	require.NoError(t, issuing.cert.CheckSignatureFrom(newRoot.cert))
	assert.Equal(t, issuing.id, ca.Status.Issuing.IssuerID)
	// set-signed installed the cross too: the issuing mount holds it, keyless.
	assert.NotNil(t, v.mounts[issuingMount].issuerOf(r.issuerByRef("cross-"+rot.Tag).cert), "the cross is in every new chain")
	bundle, err := contract.ParseCertificates([]byte(ca.Status.TrustBundle))
	require.NoError(t, err)
	assert.Len(t, bundle, 2)
	cm, err := f.kube.CoreV1().ConfigMaps("team-a").Get(context.Background(), "ca-ca", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, ca.Status.TrustBundle, cm.Data[contract.TrustKey])
	assert.Equal(t, []string{"Normal RootRotationStarted", "Normal TrustPublished", "Normal IssuanceMoved",
		"Normal RootRotationOverlap", "Normal IssuerRotated"}, reasons(f.events()), "no RootReplaced Warning")
	cond := conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootRotating)
	require.NotNil(t, cond)
	assert.Equal(t, "Overlap", cond.Reason)

	// Within the overlap a sync changes nothing.
	f.settle(t)
	v.forget()
	require.NoError(t, f.sync())
	assert.Empty(t, v.writes())
	assert.Equal(t, v1alpha1.RootRotationOverlap, f.get(t).Status.RootRotation.Phase)

	// After it, the old root is retired: one issuer and one key in the root mount.
	f.c.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	require.NoError(t, f.sync())
	ca = f.get(t)
	assert.Equal(t, v1alpha1.RootRotationCompleted, ca.Status.RootRotation.Phase)
	assert.Len(t, r.issuers, 1)
	assert.Len(t, r.keys, 1)
	assert.Equal(t, newRoot.id, r.defaultIssuer)
	assert.Equal(t, string(contract.EncodeCertificates(newRoot.cert)), ca.Status.TrustBundle)
	for _, iss := range v.mounts[issuingMount].issuers {
		if iss.keyID == "" {
			assert.Equal(t, contract.Fingerprint(newRoot.cert), contract.Fingerprint(iss.cert), "only the new root stays imported")
		} else if iss.cert.CheckSignatureFrom(newRoot.cert) != nil {
			assert.Equal(t, retiredUsage, iss.usage, "the old issuing CA signs CRLs only")
		}
	}
	assert.Equal(t, []string{"Normal RootRetired"}, reasons(f.events()))
	cond = conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootRotating)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, "Completed", cond.Reason)

	// Answered once.
	f.settle(t)
	v.forget()
	require.NoError(t, f.sync())
	assert.Empty(t, v.writes())
}

func TestSyncCountsCertificatesAndWaitsForTheirTrust(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, requestRootRotation)
	oldFP := f.get(t).Status.Root.FingerprintSHA256
	for _, name := range []string{"a", "b"} {
		_, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Create(context.Background(), &v1alpha1.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}},
			Status: v1alpha1.CertificateStatus{RootFingerprintSHA256: oldFP, TrustedRootsSHA256: []string{oldFP},
				Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(f.c.certIndexer.List()) == 2 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, f.sync())

	ca := f.get(t)
	rot := ca.Status.RootRotation
	assert.Equal(t, v1alpha1.RootRotationTrusting, rot.Phase)
	assert.Equal(t, int32(2), rot.Total)
	assert.Equal(t, int32(0), rot.Trusting)
	assert.Equal(t, oldFP, ca.Status.Root.FingerprintSHA256, "the old root signs until every Secret trusts the new one")
	assert.Equal(t, "0 of 2 Certificates carry the trust bundle", conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootRotating).Message)
	r := v.mounts[rootMount]
	assert.NotEqual(t, r.issuerByRef("root-"+rot.Tag).id, r.defaultIssuer)

	// A sync with nothing new writes nothing, to Vault or the API server.
	f.settle(t)
	require.Eventually(t, func() bool {
		cm, err := f.c.cmLister.ConfigMaps("team-a").Get("ca-ca")
		return err == nil && cm.Data[contract.TrustKey] == ca.Status.TrustBundle
	}, 5*time.Second, 5*time.Millisecond)
	v.forget()
	f.client.ClearActions()
	f.kube.ClearActions()
	require.NoError(t, f.sync())
	assert.Empty(t, v.writes())
	assert.Empty(t, f.apiWrites(), "counts are written only when they change")
}

// TestSyncRetireOnAStaleCacheIsNoFailure: the retiring sync's status write meets a conflict
// (the cache was behind the API server, as it is right after one of our own writes). That is
// no failure of the CA: no Ready=False, no Warning (it read "VaultError: write status before
// the root rotation goes on" after a real rotation), nothing retired; the next sync retires.
func TestSyncRetireOnAStaleCacheIsNoFailure(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, requestRootRotation)
	require.NoError(t, f.sync())
	require.Equal(t, v1alpha1.RootRotationOverlap, f.get(t).Status.RootRotation.Phase)
	f.settle(t)
	f.events()

	conflicts := 0
	f.client.PrependReactor("update", "certificateauthorities", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" || conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		return true, nil, apierrors.NewConflict(v1alpha1.Resource("certificateauthorities"), "ca", errors.New("the object has been modified"))
	})
	f.c.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	require.NoError(t, f.sync(), "a conflict is retried, not a failure")
	assert.Equal(t, 1, conflicts)
	assert.Empty(t, f.events(), "no Warning for a conflict")
	assert.Equal(t, contract.ReasonProvisioned, f.ready(t).Reason)
	assert.Equal(t, v1alpha1.RootRotationOverlap, f.get(t).Status.RootRotation.Phase, "nothing recorded")
	assert.Len(t, v.mounts[rootMount].issuers, 3, "nothing retired before the retiring is recorded")

	f.settle(t)
	require.NoError(t, f.sync())
	assert.Equal(t, v1alpha1.RootRotationCompleted, f.get(t).Status.RootRotation.Phase)
	assert.Equal(t, []string{"Normal RootRetired"}, reasons(f.events()))
}

// TestSyncCountsEveryIssuedCertificate: a Certificate whose re-issue fails (Ready=False) still
// holds a certificate of the old root, so it counts and holds the rotation; one never issued
// (no root reported) has nothing to move and does not count.
func TestSyncCountsEveryIssuedCertificate(t *testing.T) {
	v := newFakeVault()
	f := provisioned(t, v, requestRootRotation)
	oldFP := f.get(t).Status.Root.FingerprintSHA256
	for name, st := range map[string]v1alpha1.CertificateStatus{
		"ready":   {RootFingerprintSHA256: oldFP, TrustedRootsSHA256: []string{oldFP}, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}},
		"failing": {RootFingerprintSHA256: oldFP, TrustedRootsSHA256: []string{oldFP}, Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}}},
		"never":   {Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}}},
	} {
		_, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Create(context.Background(), &v1alpha1.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
			Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}},
			Status:     st,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(f.c.certIndexer.List()) == 3 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, f.sync())
	rot := f.get(t).Status.RootRotation
	assert.Equal(t, v1alpha1.RootRotationTrusting, rot.Phase, "the failing Certificate's Secret must carry the bundle too")
	assert.Equal(t, int32(2), rot.Total, "the Ready and the failing Certificate count, the one never issued does not")
}
