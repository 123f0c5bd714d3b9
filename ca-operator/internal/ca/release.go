package ca

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// ensureFinalizer gives ca the finalizer when its deletionPolicy asks Vault to be cleaned up
// (Delete), and takes it away otherwise: deleting a CA that retains its mounts has nothing to
// wait for, so it needs no finalizer and costs no write (the ConfigMap goes with its owner).
// It returns the object as the API server now has it, so a later status write carries its
// resourceVersion.
func (c *Controller) ensureFinalizer(ctx context.Context, ca *v1alpha1.CertificateAuthority) (*v1alpha1.CertificateAuthority, error) {
	patched := ca
	patch := func(ctx context.Context, data []byte) (err error) {
		patched, err = c.patch(ctx, ca, data)
		return err
	}
	var err error
	if wantsFinalizer(ca) {
		err = kube.AddFinalizer(ctx, ca, Finalizer, patch)
	} else {
		err = kube.RemoveFinalizer(ctx, ca, Finalizer, patch)
	}
	return patched, err
}

// wantsFinalizer reports whether deleting ca must wait for the ca-operator: only when its
// deletionPolicy has Vault cleaned up.
func wantsFinalizer(ca *v1alpha1.CertificateAuthority) bool {
	return ca.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete
}

// patchCA returns a PatchFunc that merge-patches ca.
func (c *Controller) patchCA(ca *v1alpha1.CertificateAuthority) kube.PatchFunc {
	return func(ctx context.Context, data []byte) error {
		_, err := c.patch(ctx, ca, data)
		return err
	}
}

// patch merge-patches ca's finalizers with data and returns the object as the API server now
// has it.
func (c *Controller) patch(ctx context.Context, ca *v1alpha1.CertificateAuthority, data []byte) (*v1alpha1.CertificateAuthority, error) {
	patched, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).Patch(ctx, ca.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		return nil, err
	}
	c.metrics.apiWrites.WithLabelValues("finalizer").Inc()
	return patched, nil
}

// finalizeWithin runs finalize for a CertificateAuthority being deleted, but never holds it for
// longer than the finalizer timeout after its deletionTimestamp: each attempt gets the time
// left, and once it has run out the finalizer is released with a Warning naming the mounts left
// in Vault. (Setting spec.deletionPolicy to Retain lets it go at once, keeping the mounts.)
func (c *Controller) finalizeWithin(ctx context.Context, ca *v1alpha1.CertificateAuthority) error {
	if !kube.HasFinalizer(ca, Finalizer) || !wantsFinalizer(ca) {
		return c.finalize(ctx, ca)
	}
	timeout := c.finalizerTimeout
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
	c.queue.EnqueueAfter(cache.MetaObjectToName(ca), deadline.Sub(c.now()))
	return err
}

// finalize carries out the deletion policy, then releases the object.
func (c *Controller) finalize(ctx context.Context, ca *v1alpha1.CertificateAuthority) error {
	if !kube.HasFinalizer(ca, Finalizer) {
		return nil
	}
	if ca.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete {
		mounts, err := pkipath.For(c.mountPrefix, ca.Namespace, ca.Spec.ClusterID)
		if err != nil {
			// Nothing of this CA can be in Vault under a path we would compute.
			return kube.RemoveFinalizer(ctx, ca, Finalizer, c.patchCA(ca))
		}
		for _, path := range []string{mounts.Issuing, mounts.Root} {
			if err := c.unmountIfOurs(ctx, ca, path); err != nil {
				c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonVaultError, "cannot delete the CA yet: %s", vault.Describe(err))
				return err
			}
		}
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonMountsDeleted, "deleted Vault mounts %s and %s", mounts.Root, mounts.Issuing)
	}
	return kube.RemoveFinalizer(ctx, ca, Finalizer, c.patchCA(ca))
}

// unmountIfOurs disables the mount at path when it exists and records ca as its owner: a mount
// someone else owns is never destroyed.
func (c *Controller) unmountIfOurs(ctx context.Context, ca *v1alpha1.CertificateAuthority, path string) error {
	m, err := c.pki.readMount(ctx, path)
	if errors.Is(err, errNoMount) {
		return nil
	}
	if err != nil {
		return err
	}
	if who, _ := mountOwnership(m.Description, ca.Namespace, ca.Name, ca.UID); who != OwnedByUs {
		return nil
	}
	return c.pki.disableMount(ctx, path)
}

// releaseMounted removes ca's finalizer without unmounting its Vault mounts, with a Warning
// that names them and says why, and counts it.
func (c *Controller) releaseMounted(ctx context.Context, ca *v1alpha1.CertificateAuthority, why string) error {
	root, issuing := ca.Status.RootMount, ca.Status.IssuingMount
	if mounts, err := pkipath.For(c.mountPrefix, ca.Namespace, ca.Spec.ClusterID); err == nil {
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
	c.metrics.unmountsAbandoned.WithLabelValues("timeout").Inc()
	return nil
}
