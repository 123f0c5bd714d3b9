package ca

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/metrics"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// ReasonUnmountAbandoned is the Warning of a CertificateAuthority with deletionPolicy Delete
// that was let go without its Vault mounts being unmounted, because Vault did not answer within
// the finalizer timeout.
const ReasonUnmountAbandoned = "UnmountAbandoned"

// unmountsAbandoned counts deletions that left a CA's mounts in Vault although deletionPolicy
// asked to remove them.
var unmountsAbandoned = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "clusterpki_ca_operator_unmounts_abandoned_total",
	Help: "CertificateAuthorities with deletionPolicy Delete released without unmounting their Vault mounts, by reason (timeout: Vault did not answer within --finalizer-timeout).",
}, []string{"reason"})

func init() {
	metrics.Registry.MustRegister(unmountsAbandoned)
}

// finalizeWithin runs finalize for a CertificateAuthority being deleted, but never holds it for
// longer than the finalizer timeout after its deletionTimestamp: each attempt gets the time
// left, and once it has run out the finalizer is released with a Warning naming the mounts left
// in Vault. (Setting spec.deletionPolicy to Retain lets it go at once, keeping the mounts.)
func (c *Controller) finalizeWithin(ctx context.Context, ca *v1alpha1.CertificateAuthority) error {
	if !kube.HasFinalizer(ca, Finalizer) || ca.Spec.DeletionPolicy != v1alpha1.DeletionPolicyDelete {
		return c.finalize(ctx, ca)
	}
	timeout := c.cfg.FinalizerTimeout
	if timeout <= 0 {
		timeout = kube.DefaultFinalizerTimeout
	}
	deadline := kube.FinalizerDeadline(ca, timeout)
	if !c.now().Before(deadline) {
		return c.releaseMounted(ctx, ca, fmt.Sprintf("Vault did not answer within %s of the deletion", timeout))
	}
	attempt, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := c.finalize(attempt, ca)
	if err == nil {
		return nil
	}
	if !c.now().Before(deadline) {
		return c.releaseMounted(ctx, ca, fmt.Sprintf("Vault did not answer within %s of the deletion (last error: %s)", timeout, vault.Describe(err)))
	}
	// The rate limiter's backoff may grow past the deadline: look again at the deadline at the
	// latest, whichever comes first.
	c.ctrl.EnqueueAfter(cache.MetaObjectToName(ca), deadline.Sub(c.now()))
	return err
}

// releaseMounted removes ca's finalizer without unmounting its Vault mounts, with a Warning
// that names them and says why, and counts it.
func (c *Controller) releaseMounted(ctx context.Context, ca *v1alpha1.CertificateAuthority, why string) error {
	root, issuing := ca.Status.RootMount, ca.Status.IssuingMount
	if mounts, err := pkipath.For(c.cfg.MountPrefix, ca.Namespace, ca.Spec.ClusterID); err == nil {
		root, issuing = mounts.Root, mounts.Issuing
	}
	// Release first: a sync on a cache that has not seen the release yet fails the patch's
	// resourceVersion guard and so neither warns nor counts a second time.
	err := kube.RemoveFinalizer(ctx, ca, Finalizer, c.patchCA(ca))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.log.WithFields(map[string]any{"ca": ca.Name, "namespace": ca.Namespace, "root": root, "issuing": issuing}).
		Warn("released the finalizer without unmounting the CA's Vault mounts")
	c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonUnmountAbandoned,
		"Vault mounts %s and %s were not (all) unmounted: %s; the CertificateAuthority is deleted anyway and what is left of the CA stays in Vault. Disable those mounts by hand if it must go.",
		root, issuing, why)
	unmountsAbandoned.WithLabelValues("timeout").Inc()
	return nil
}
