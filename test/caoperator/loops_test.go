package caoperator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/ca-operator/caoperator"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// TestNoRotationLoops runs, under one operator resyncing every 3 seconds, the two ways a CA's
// issuing CA was rotated in a loop, and counts the issuers Vault holds over a measured minute:
// at most one new one each. Without the fixes the short root rotates at every resync (about 20
// a minute) and the annotation at every change (about 30).
func TestNoRotationLoops(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	// A root with an hour of life and a rotation window of 58m50s: an issuing CA made from it
	// is born (almost) inside its window, and after ten seconds every new one would be.
	create(t, newCA(ns, "short", "short", func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.Root.TTL = "1h"
		ca.Spec.Root.RotationOverlap = "1m" // the default (24h) must be shorter than the root's ttl
		ca.Spec.Issuing.TTL = "59m"
		ca.Spec.Issuing.RotateBefore = "58m50s"
	}))
	create(t, newCA(ns, "asked", "asked"))
	waitReady(t, ns, "short", metav1.ConditionTrue, "Provisioned")
	waitReady(t, ns, "asked", metav1.ConditionTrue, "Provisioned")

	before := map[string]int{"short": issuerCount(t, ns, "short"), "asked": issuerCount(t, ns, "asked")}
	// The rotate-issuer annotation changed every two seconds for a minute.
	end := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(end); i++ {
		update(t, ns, "asked", func(ca *v1alpha1.CertificateAuthority) {
			ca.Annotations = map[string]string{v1alpha1.AnnotationRotateIssuer: fmt.Sprintf("request-%d", i)}
		})
		time.Sleep(2 * time.Second)
	}
	for name, n := range before {
		rotations := issuerCount(t, ns, name) - n
		t.Logf("%s: %d rotation(s) over a minute", name, rotations)
		assert.LessOrEqual(t, rotations, 1, "%s rotated more than once in a minute", name)
	}

	// The short root: Ready, rotation stopped, and a Warning that the root needs attention.
	short := waitReady(t, ns, "short", metav1.ConditionTrue, "Provisioned")
	expiring := conditions.Get(short.Status.Conditions, v1alpha1.ConditionRootExpiring)
	require.NotNil(t, expiring)
	assert.Equal(t, metav1.ConditionTrue, expiring.Status)
	assert.Equal(t, "RootTooShort", expiring.Reason)
	hasEvent(t, ns, "short", "Warning RootTooShort")

	// The annotation: answered once at once, the rest held for the floor, and still Ready.
	waitReady(t, ns, "asked", metav1.ConditionTrue, "Provisioned")
	hasEvent(t, ns, "asked", "Normal IssuerRotated")
	hasEvent(t, ns, "asked", "Normal RotationDeferred")
	assert.Greater(t, caoperator.RotationFloor, time.Minute, "the measured minute lies within one floor")
}

// issuerCount returns how many issuers the issuing mount of ns/clusterID holds in Vault: one
// more with every rotation.
func issuerCount(t *testing.T, ns, clusterID string) int {
	t.Helper()
	s, err := rootVault.Logical().List(issuingOf(ns, clusterID) + "/issuers")
	require.NoError(t, err)
	require.NotNil(t, s)
	keys, _ := s.Data["keys"].([]any)
	return len(keys)
}

// TestDeletionDoesNotWaitForVault deletes a CA with deletionPolicy Delete while Vault is down:
// it goes within the finalizer timeout, and a Warning names the mounts left in Vault.
func TestDeletionDoesNotWaitForVault(t *testing.T) {
	// Long enough that, on a loaded machine, the Retain case is seen well before it.
	const timeout = 30 * time.Second
	startOperatorWith(t, opToken, func(c *caoperator.Config) { c.FinalizerTimeout = timeout })
	ns := namespace(t)
	for _, name := range []string{"drop", "keep"} {
		create(t, newCA(ns, name, name, func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }))
	}
	waitReady(t, ns, "drop", metav1.ConditionTrue, "Provisioned")
	waitReady(t, ns, "keep", metav1.ConditionTrue, "Provisioned")
	abandonedBefore := counter(t, "clusterpki_ca_operator_unmounts_abandoned_total")

	env.StopVault()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.StartVault(context.Background())
		}
	})
	for _, name := range []string{"drop", "keep"} {
		require.NoError(t, client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(context.Background(), name, metav1.DeleteOptions{}))
	}
	deleted := get(t, ns, "drop").DeletionTimestamp
	require.NotNil(t, deleted)
	// An admin who will not wait keeps the other CA's mounts instead: it goes at once.
	update(t, ns, "keep", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyRetain })
	gone(t, ns, "keep")
	assert.True(t, time.Now().Before(deleted.Add(timeout)), "Retain let it go before the timeout")
	for _, e := range events(t, ns, "keep") {
		assert.NotContains(t, e, "UnmountAbandoned", "nothing was abandoned: Retain asks to keep the mounts")
	}
	require.True(t, assertEventually(timeout+15*time.Second, func() bool {
		_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(context.Background(), "drop", metav1.GetOptions{})
		return err != nil
	}), "the CA is still there with Vault down")
	assert.WithinDuration(t, deleted.Add(timeout), time.Now(), 10*time.Second, "let go at its deadline")

	hasEvent(t, ns, "drop", "Warning UnmountAbandoned")
	var warning string
	for _, e := range events(t, ns, "drop") {
		if strings.HasPrefix(e, "Warning UnmountAbandoned ") {
			warning = e
		}
	}
	assert.Contains(t, warning, rootOf(ns, "drop"), "the Warning names the mounts left")
	assert.Contains(t, warning, issuingOf(ns, "drop"))
	assert.Equal(t, abandonedBefore+1, counter(t, "clusterpki_ca_operator_unmounts_abandoned_total"))

	require.NoError(t, env.StartVault(context.Background()))
	restarted = true
	m := mounts(t)
	assert.Contains(t, m, rootOf(ns, "drop"), "left in Vault, as the Warning says")
	assert.Contains(t, m, issuingOf(ns, "drop"))
}

// counter returns the sum of the counter name over its labels in the operators' registry.
func counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
