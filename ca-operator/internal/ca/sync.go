package ca

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// conflictRecheck is how often a CA that waits for a person (a mount conflict, a migration)
// looks again, in case what blocked it went away.
const conflictRecheck = 5 * time.Minute

// sync converges one CertificateAuthority: Vault mounts, root, issuing CA, roles, the
// published ConfigMap, then status. It reads top to bottom as that story.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	cached, err := c.caLister.CertificateAuthorities(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ca := cached.DeepCopy()
	if ca.DeletionTimestamp != nil {
		return c.finalizeWithin(ctx, ca)
	}
	if ca, err = c.ensureFinalizer(ctx, ca); err != nil {
		return err
	}

	status := ca.Status.DeepCopy()
	status.ObservedGeneration = ca.Generation
	now := c.now()
	plan, err := PlanFor(c.mountPrefix, ca.Namespace, &ca.Spec)
	if err != nil {
		// An invalid spec waits for the user: no retry until the spec changes.
		return c.notReady(ctx, ca, status, now, ReasonInvalidSpec, vault.Describe(err))
	}
	got, err := c.converge(ctx, ca, plan, status, now)
	if err == nil {
		err = c.ensureConfigMap(ctx, ca, status, status.TrustBundle)
	}
	if apierrors.IsConflict(err) {
		// The cache was behind the API server (most often our own last status write, whose
		// echo brings no sync): nothing failed, so no Ready=False and no Warning; look again
		// once the cache has caught up.
		c.log.WithFields(logrus.Fields{"ca": ca.Name, "namespace": ca.Namespace}).WithError(err).Info("CertificateAuthority changed during the sync; looking again")
		c.queue.EnqueueAfter(key, time.Second)
		return nil
	}
	if err != nil {
		return c.failed(ctx, ca, status, now, err)
	}
	if err := c.provisioned(ctx, ca, plan, status, now); err != nil {
		return err
	}
	if next := got.nextLook(plan, now); next > 0 {
		c.queue.EnqueueAfter(key, next)
	}
	return nil
}

// failed records a sync that could not converge ca: Ready=False with the error's reason (a
// Warning when the reason is new), then a retry — rate-limited when a retry may fix it, a
// slow recheck when it waits for a person.
func (c *Controller) failed(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, now time.Time, err error) error {
	reason, transient := classify(err)
	c.log.WithFields(logrus.Fields{"ca": ca.Name, "namespace": ca.Namespace, "reason": reason}).WithError(err).
		Warn("CertificateAuthority not ready")
	// Conditions and events carry Vault's words and our context, never Vault's address.
	if werr := c.notReady(ctx, ca, status, now, reason, vault.Describe(err)); werr != nil {
		return werr
	}
	if !transient {
		return controller.RequeueAfter(conflictRecheck)
	}
	return err
}

// notReady sets Ready=False with reason and msg and writes status, with a Warning event when
// the reason is new: a CA that keeps failing for one reason (Vault down, retried with backoff)
// warns once, when it starts.
func (c *Controller) notReady(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, now time.Time, reason, msg string) error {
	if !sameReadyReason(ca, reason) {
		c.recorder.Event(ca, corev1.EventTypeWarning, reason, msg)
	}
	c.setReady(status, ca.Generation, now, metav1.ConditionFalse, reason, msg)
	return c.writeStatus(ctx, ca, status)
}

// sameReadyReason reports whether ca's Ready condition already carries reason.
func sameReadyReason(ca *v1alpha1.CertificateAuthority, reason string) bool {
	ready := conditions.Get(ca.Status.Conditions, v1alpha1.ConditionReady)
	return ready != nil && ready.Reason == reason
}

// provisioned sets Ready=True and RootExpiring and writes status, with a Normal event when the
// CA has just become Ready.
func (c *Controller) provisioned(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, status *v1alpha1.CertificateAuthorityStatus, now time.Time) error {
	wasReady := conditions.IsTrue(ca.Status.Conditions, v1alpha1.ConditionReady)
	c.setReady(status, ca.Generation, now, metav1.ConditionTrue, contract.ReasonProvisioned,
		fmt.Sprintf("root and issuing CA in Vault mounts %s and %s, %d role(s)", plan.Mounts.Root, plan.Mounts.Issuing, len(plan.Roles)))
	c.setRootExpiring(ca, status, plan, now)
	if err := c.writeStatus(ctx, ca, status); err != nil {
		return err
	}
	if !wasReady {
		c.recorder.Eventf(ca, corev1.EventTypeNormal, contract.ReasonProvisioned, "CA ready to issue: root %s in Vault mount %s, issuing CA %s in %s, %d role(s)",
			status.Root.SerialNumber, plan.Mounts.Root, status.Issuing.SerialNumber, plan.Mounts.Issuing, len(plan.Roles))
	}
	return nil
}

// setRootExpiring keeps the RootExpiring condition (rootExpiringCondition) and warns when it
// turns True or its reason changes: the root nears its end, or is too short-lived for the
// issuing CA to be rotated.
func (c *Controller) setRootExpiring(ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, plan *Plan, now time.Time) {
	if status.Root == nil {
		return
	}
	cond := rootExpiringCondition(status.Root.NotAfter.Time, plan, now)
	if prev := conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootExpiring); cond.Status == metav1.ConditionTrue &&
		(prev == nil || prev.Status != metav1.ConditionTrue || prev.Reason != cond.Reason) {
		c.recorder.Event(ca, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	conditions.Set(&status.Conditions, cond, ca.Generation, metav1.NewTime(now))
}

// setReady sets the Ready condition.
func (c *Controller) setReady(status *v1alpha1.CertificateAuthorityStatus, generation int64, now time.Time, s metav1.ConditionStatus, reason, msg string) {
	conditions.Set(&status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: s, Reason: reason, Message: msg}, generation, metav1.NewTime(now))
}

// writeStatus writes status only when it changed. A conflict is left to the next event.
func (c *Controller) writeStatus(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus) error {
	if apiequality.Semantic.DeepEqual(&ca.Status, status) {
		return nil
	}
	update := ca.DeepCopy()
	update.Status = *status
	_, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) && rootRotationRunning(status.RootRotation) {
		// A running root rotation's counts come from other objects, and our own status echo
		// brings no sync: look again shortly rather than at the next resync.
		c.queue.EnqueueAfter(cache.ObjectName{Namespace: ca.Namespace, Name: ca.Name}, time.Second)
		return nil
	}
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	c.metrics.apiWrites.WithLabelValues("status").Inc()
	return nil
}

// ensureConfigMap publishes the trust bundle rootPEM (the root, or during a root rotation both
// roots) in the CA's ConfigMap (contract.ConfigMapName), owned by the CA.
func (c *Controller) ensureConfigMap(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, rootPEM string) error {
	name := contract.ConfigMapName(ca.Name)
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ca.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelCertificateAuthority: ca.Name,
				v1alpha1.LabelClusterID:            ca.Spec.ClusterID,
				v1alpha1.LabelManagedBy:            contract.ManagedByValue,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ca, v1alpha1.SchemeGroupVersion.WithKind("CertificateAuthority"))},
		},
		Data: map[string]string{contract.TrustKey: rootPEM},
	}
	have, err := c.cmLister.ConfigMaps(ca.Namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		// The lister sees only labelled ConfigMaps; a foreign one of that name makes Create fail.
		if _, err := c.kube.CoreV1().ConfigMaps(ca.Namespace).Create(ctx, want, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return &mountConflictError{fmt.Sprintf("ConfigMap %s/%s exists and was not made by clusterpki", ca.Namespace, name)}
			}
			return fmt.Errorf("create ConfigMap %s: %w", name, err)
		}
		c.metrics.apiWrites.WithLabelValues("configmap").Inc()
	case err != nil:
		return err
	case have.Data[contract.TrustKey] != rootPEM || !apiequality.Semantic.DeepEqual(have.Labels, want.Labels) ||
		!apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences):
		update := have.DeepCopy()
		update.Labels, update.OwnerReferences, update.Data = want.Labels, want.OwnerReferences, want.Data
		if _, err := c.kube.CoreV1().ConfigMaps(ca.Namespace).Update(ctx, update, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ConfigMap %s: %w", name, err)
		}
		c.metrics.apiWrites.WithLabelValues("configmap").Inc()
	}
	status.ConfigMapName = name
	return nil
}
