package certificate

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Finalizer holds a Certificate back from deletion until its certificate is revoked; it is set
// only when the revocation policy revokes on delete.
const Finalizer = "clusterpki.dev/revoke"

// conflictRecheck is how often a Certificate blocked by someone else's Secret looks again: that
// Secret is not in the cache (it lacks our label), so its deletion brings no event.
const conflictRecheck = time.Minute

// sync converges the Certificate called key: it issues, re-issues or leaves alone its
// certificate, keeps its Secret and status current, and schedules its renewal.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (err error) {
	log := c.log.WithFields(logrus.Fields{"namespace": key.Namespace, "certificate": key.Name})
	start := c.now()
	defer func() {
		log.WithField("duration", time.Since(start)).WithError(err).Debug("synced certificate")
	}()

	cached, err := c.certificates.Certificates(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cert := cached.DeepCopy()
	if cert.DeletionTimestamp != nil {
		return c.finalizeWithin(ctx, log, cert)
	}
	if err := c.ensureFinalizer(ctx, cert); err != nil {
		return ignoreStale(err)
	}

	keySpec, err := pki.NormalizeKeySpec(cert.Spec.PrivateKey)
	if err != nil {
		return c.block(ctx, cert, blocked{ReasonInvalidSpec, err.Error()})
	}
	iss, why, err := c.resolveIssuer(cert)
	if err != nil {
		return err
	}
	if why != nil {
		// No Vault call and no retry: a change of the CA queues the Certificate again.
		return c.block(ctx, cert, *why)
	}

	in, reason, message, triggered, err := c.decide(ctx, cert, iss, keySpec)
	if err != nil {
		return err
	}
	bounded := c.rotationBounded(iss, reason)
	if !triggered || !bounded {
		// A slot reserved earlier for a re-issue that is no longer needed goes back.
		c.rotation.drop(key, c.now())
	}
	switch {
	case !triggered:
		return c.keepCurrent(ctx, log, cert, iss, in)
	case reason == policy.ReasonSecretConflict:
		if err := c.block(ctx, cert, blocked{reason, message}); err != nil {
			return err
		}
		return controller.RequeueAfter(conflictRecheck)
	case reason == policy.ReasonTrustOutdated:
		return c.refreshTrust(ctx, log, cert, iss, in)
	default:
		if until, held := policy.ReissueHeld(in); held {
			return c.holdReissue(ctx, log, cert, in, until, reason, message)
		}
		if bounded {
			if at, wait := c.rotation.take(key, c.now()); wait > 0 {
				return c.awaitRotationSlot(ctx, log, cert, in, at, wait, reason, message)
			}
		}
		return c.reissue(ctx, log, cert, iss, keySpec, in, reason, message)
	}
}

// decide runs the decision chain for cert on its Secret: on the cached Secret when that settles
// it, else on the Secret as the API server has it. It returns the input decided on, and whether
// (and why) a new certificate is needed.
func (c *Controller) decide(ctx context.Context, cert *v1alpha1.Certificate, iss issuer, keySpec pki.KeySpec) (
	in policy.Input, reason, message string, triggered bool, err error) {
	s, err := c.secrets.Secrets(cert.Namespace).Get(cert.Spec.SecretName)
	if apierrors.IsNotFound(err) {
		s = nil
	} else if err != nil {
		return in, "", "", false, err
	}
	now := c.now()
	in, known := c.cachedInput(cert, s, keySpec, iss, now)
	if known {
		reason, message, triggered = policy.Default.Evaluate(in)
	}
	if !known || (triggered && reason != policy.ReasonSecretConflict && readLiveFirst(cert, s)) {
		// The cache may lag behind our own last write, and it keeps only digests of the data,
		// which no write may start from: decide again on the Secret as the API server has it
		// before signing anything.
		if in, err = c.liveInput(ctx, cert, iss, now); err != nil {
			return in, "", "", false, err
		}
		reason, message, triggered = policy.Default.Evaluate(in)
	}
	return in, reason, message, triggered, nil
}

// readLiveFirst reports whether a sync that wants to issue must read the live Secret before
// signing. When the cache shows none and the status records no conflict, it need not: the
// cache never holds Secrets without our label, but the create that stores the new certificate
// answers AlreadyExists if one is there, and the decision is then taken again on the live
// Secret, which is never overwritten when it is not ours. That saves a request on every new
// Certificate; a conflict costs one signature, once, because the status then records it and
// every later look reads first.
func readLiveFirst(cert *v1alpha1.Certificate, cached *corev1.Secret) bool {
	return cached != nil || sameReadyReason(cert, policy.ReasonSecretConflict)
}

// cachedInput returns the decision input for cert, issued from iss, and its cached Secret s
// (nil when the cache has none), and false when the cache's facts about s are not current or
// cannot answer for iss's trust.
func (c *Controller) cachedInput(cert *v1alpha1.Certificate, s *corev1.Secret, keySpec pki.KeySpec, iss issuer, now time.Time) (policy.Input, bool) {
	in := policy.Input{Certificate: cert, RootFingerprint: iss.rootFingerprint, Now: now, SpecHash: secret.SpecHash(cert.Spec, keySpec.String())}.
		WithTrust(iss.trust, iss.trustFingerprints)
	if s == nil {
		return in, true
	}
	view, data, ok := c.secretFacts.data(s)
	in.Secret, in.Data = view, data
	// The facts record to which roots of ca.crt the leaf chains; a bundle root that ca.crt
	// lacks is one they cannot speak for.
	return in, ok && (iss.trust == nil || data.CanVerify(iss.trust))
}

// liveInput returns the decision input for cert, issued from iss, and its Secret as the API
// server has it.
func (c *Controller) liveInput(ctx context.Context, cert *v1alpha1.Certificate, iss issuer, now time.Time) (policy.Input, error) {
	live, err := c.kube.CoreV1().Secrets(cert.Namespace).Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return policy.Input{}, fmt.Errorf("get secret %s/%s: %w", cert.Namespace, cert.Spec.SecretName, err)
	}
	return policy.NewInput(cert, live, iss.rootFingerprint, now).WithTrust(iss.trust, iss.trustFingerprints), nil
}

// block records that cert cannot be issued, and why: Ready=False with the reason, a Warning
// event when the reason is new. It asks for no retry.
func (c *Controller) block(ctx context.Context, cert *v1alpha1.Certificate, why blocked) error {
	b := newStatus(cert, c.now())
	if !sameReadyReason(cert, why.reason) {
		c.recorder.Event(cert, corev1.EventTypeWarning, why.reason, why.message)
	}
	b.ready(metav1.ConditionFalse, why.reason, why.message)
	if conditions.Get(b.status.Conditions, v1alpha1.ConditionIssuing) != nil {
		b.issuing(metav1.ConditionFalse, why.reason, "Issuance waits: "+why.message)
	}
	_, err := c.writeStatus(ctx, b)
	c.metrics.syncErrors.WithLabelValues(why.reason).Inc()
	return ignoreStale(err)
}

// sameReadyReason reports whether cert's Ready condition already carries reason.
func sameReadyReason(cert *v1alpha1.Certificate, reason string) bool {
	for _, cond := range cert.Status.Conditions {
		if cond.Type == v1alpha1.ConditionReady {
			return cond.Reason == reason
		}
	}
	return false
}

// keepCurrent handles a Certificate whose Secret holds a good certificate: it brings the
// Secret's labels and annotations and the status in line, and schedules the renewal.
func (c *Controller) keepCurrent(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer, in policy.Input) error {
	if secret.ApplyMetadata(in.Secret.DeepCopy(), cert, iss.ca.Spec.ClusterID, secret.ProvenanceOf(in.Secret)) {
		if err := c.updateSecretMetadata(ctx, cert, iss); err != nil {
			return err
		}
		log.Info("updated the secret's labels and annotations")
	}

	leaf := in.Data.Leaf
	renewal := policy.RenewalTime(cert, leaf)
	b := newStatus(cert, in.Now).current(leaf, renewal).
		roots(secret.ProvenanceOf(in.Secret).RootFingerprint, in.Data.RootFingerprints).
		ready(metav1.ConditionTrue, ReasonIssued, readyMessage(leaf)).
		issuing(metav1.ConditionFalse, ReasonUpToDate, "The certificate in the Secret is current")
	if _, err := c.writeStatus(ctx, b); err != nil {
		return ignoreStale(err)
	}
	c.queue.EnqueueAfter(cache.MetaObjectToName(cert), nextLook(renewal, leaf).Sub(c.now()))
	return nil
}

// updateSecretMetadata brings the labels, annotations and owner of cert's Secret in line,
// starting from the live Secret: the cached one keeps only digests of the data.
func (c *Controller) updateSecretMetadata(ctx context.Context, cert *v1alpha1.Certificate, iss issuer) error {
	secrets := c.kube.CoreV1().Secrets(cert.Namespace)
	s, err := secrets.Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // its deletion queues the Certificate again
	}
	if err != nil {
		return fmt.Errorf("get secret %s/%s: %w", cert.Namespace, cert.Spec.SecretName, err)
	}
	if !secret.IsOwnedBy(s, cert) || !secret.ApplyMetadata(s, cert, iss.ca.Spec.ClusterID, secret.ProvenanceOf(s)) {
		return nil // changed since the cache saw it: its event queues the Certificate again
	}
	c.metrics.apiWrites.WithLabelValues("secrets", "update").Inc()
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("update secret %s/%s metadata: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// nextLook returns when a Certificate whose leaf is due for renewal at renewal needs looking at
// again: at its renewal, or at its expiry when the floor between issuances puts the renewal
// after it, so that Ready turns False when it expires.
func nextLook(renewal time.Time, leaf *x509.Certificate) time.Time {
	if leaf.NotAfter.Before(renewal) {
		return leaf.NotAfter
	}
	return renewal
}

// readyMessage is the Ready condition's message for a current certificate.
func readyMessage(leaf *x509.Certificate) string {
	return fmt.Sprintf("Certificate is up to date and valid until %s", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// ensureFinalizer adds the revocation finalizer when cert's policy revokes on delete, and
// removes it when the policy no longer does.
func (c *Controller) ensureFinalizer(ctx context.Context, cert *v1alpha1.Certificate) error {
	want := revokesOnDelete(cert.Spec.RevocationPolicy)
	if want == kube.HasFinalizer(cert, Finalizer) {
		return nil
	}
	patch := c.patchCertificate(cert)
	var err error
	if want {
		err = kube.AddFinalizer(ctx, cert, Finalizer, patch)
	} else {
		err = kube.RemoveFinalizer(ctx, cert, Finalizer, patch)
	}
	if apierrors.IsConflict(err) {
		return errStale
	}
	return err
}

// patchCertificate returns a kube.PatchFunc that merge-patches cert.
func (c *Controller) patchCertificate(cert *v1alpha1.Certificate) kube.PatchFunc {
	return func(ctx context.Context, data []byte) error {
		c.metrics.apiWrites.WithLabelValues("finalizers", "patch").Inc()
		_, err := c.client.ClusterpkiV1alpha1().Certificates(cert.Namespace).Patch(ctx, cert.Name, types.MergePatchType, data, metav1.PatchOptions{})
		return err
	}
}

// revokesOnDelete reports whether policy revokes the certificate when its Certificate goes.
func revokesOnDelete(p v1alpha1.RevocationPolicy) bool {
	return p == v1alpha1.RevocationPolicyOnDelete || p == v1alpha1.RevocationPolicyAlways
}

// revokesOnReissue reports whether policy revokes a certificate once it is replaced.
func revokesOnReissue(p v1alpha1.RevocationPolicy) bool {
	return p == v1alpha1.RevocationPolicyOnReissue || p == v1alpha1.RevocationPolicyAlways
}

// ignoreStale turns errStale into nil.
func ignoreStale(err error) error {
	if errors.Is(err, errStale) {
		return nil
	}
	return err
}
