package certificate

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Reasons a revocation at deletion is left undone, as the abandoned counter labels them.
const (
	abandonedTimeout = "timeout"
	abandonedSkipped = "skipped"
)

// finalizeWithin runs finalize for a Certificate being deleted, but never holds it for longer
// than the finalizer timeout after its deletionTimestamp: each attempt gets the time left, and
// once it has run out (or an admin set the skip-revocation annotation) the finalizer is
// released with a Warning naming the certificate left unrevoked.
func (c *Controller) finalizeWithin(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate) error {
	if !kube.HasFinalizer(cert, Finalizer) || !revokesOnDelete(cert.Spec.RevocationPolicy) {
		return c.finalize(ctx, log, cert)
	}
	if cert.Annotations[v1alpha1.AnnotationSkipRevocation] == "true" {
		return c.releaseUnrevoked(ctx, log, cert, abandonedSkipped, EventRevocationSkipped,
			fmt.Sprintf("the %s annotation asks to skip revocation", v1alpha1.AnnotationSkipRevocation))
	}
	deadline := kube.FinalizerDeadline(cert, c.finalizerTimeout)
	if !c.now().Before(deadline) {
		return c.releaseUnrevoked(ctx, log, cert, abandonedTimeout, EventRevocationAbandoned,
			fmt.Sprintf("Vault did not answer within %s of the deletion", c.finalizerTimeout))
	}
	attempt, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := c.finalize(attempt, log, cert)
	if err == nil {
		return nil
	}
	if !c.now().Before(deadline) {
		return c.releaseUnrevoked(ctx, log, cert, abandonedTimeout, EventRevocationAbandoned,
			fmt.Sprintf("Vault did not answer within %s of the deletion (last error: %v)", c.finalizerTimeout, err))
	}
	// The rate limiter's backoff may grow past the deadline: look again at the deadline at the
	// latest, whichever comes first.
	c.queue.EnqueueAfter(cache.MetaObjectToName(cert), deadline.Sub(c.now()))
	return err
}

// releaseUnrevoked removes cert's finalizer without revoking its certificate, and when there was
// one to revoke, says so in a Warning event of reason eventReason (naming the serial and why)
// and counts it under the label reason.
func (c *Controller) releaseUnrevoked(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, reason, eventReason, why string) error {
	leaf, err := c.leafToRevoke(ctx, cert)
	if err != nil {
		return err
	}
	// Release first: a sync on a cache that has not seen the release yet fails the patch's
	// resourceVersion guard and so neither warns nor counts a second time.
	err = kube.RemoveFinalizer(ctx, cert, Finalizer, c.patchCertificate(cert))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if leaf != nil {
		serial := contract.Serial(leaf.SerialNumber)
		log.WithFields(logrus.Fields{"serial": serial, "reason": reason}).Warn("released the finalizer without revoking the certificate")
		c.recorder.Eventf(cert, corev1.EventTypeWarning, eventReason,
			"Certificate %s (valid until %s) was not revoked: %s; the Certificate is deleted anyway. Revoke it by hand if it must not be trusted.",
			serial, leaf.NotAfter.UTC().Format(time.RFC3339), why)
		c.metrics.abandoned.WithLabelValues(reason).Inc()
	}
	return nil
}

// leafToRevoke returns the unexpired certificate in cert's Secret, or nil when there is none
// (no Secret, not ours, unreadable or expired): the certificate revocation at deletion is about.
func (c *Controller) leafToRevoke(ctx context.Context, cert *v1alpha1.Certificate) (*x509.Certificate, error) {
	s, err := c.kube.CoreV1().Secrets(cert.Namespace).Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", cert.Namespace, cert.Spec.SecretName, err)
	}
	if !secret.IsOwnedBy(s, cert) {
		return nil, nil
	}
	leaf := policy.ParseData(s).Leaf
	if leaf == nil || !c.now().Before(leaf.NotAfter) {
		return nil, nil
	}
	return leaf, nil
}
