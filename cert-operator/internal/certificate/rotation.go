package certificate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/controller"
)

// DefaultRotationReissueInterval is the default time between two re-issues onto a CA's new
// root during a root rotation (--rotation-reissue-interval).
const DefaultRotationReissueInterval = 200 * time.Millisecond

// rotationBound spaces the re-issues a root rotation causes (every Certificate of the CA
// moves to the new root at once): one process-wide token bucket, one re-issue per interval
// with a burst of one, so Vault, the API server and the workloads that reload their Secrets
// see a steady trickle instead of a wave. A sync that finds no token free keeps the slot the
// bucket reserved for it, by key, and comes back when it is due: a second event for the same
// Certificate meanwhile finds the slot and does not reserve another. A restart starts with a
// fresh bucket; the slots are lost, and the first re-issue after it goes at once.
type rotationBound struct {
	// limiter is nil when the bound is off (interval 0).
	limiter *rate.Limiter
	mu      sync.Mutex
	slots   map[cache.ObjectName]slot
}

// slot is a reservation of the bucket and the time it falls due.
type slot struct {
	at          time.Time
	reservation *rate.Reservation
}

// newRotationBound returns the bound of one re-issue per interval (none when 0).
func newRotationBound(interval time.Duration) *rotationBound {
	b := &rotationBound{slots: map[cache.ObjectName]slot{}}
	if interval > 0 {
		b.limiter = rate.NewLimiter(rate.Every(interval), 1)
	}
	return b
}

// take returns, for the Certificate key, zero when it may re-issue now (its slot has come, or
// a token is free), and otherwise the time of its slot and how long until then.
func (b *rotationBound) take(key cache.ObjectName, now time.Time) (time.Time, time.Duration) {
	if b.limiter == nil {
		return now, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.slots[key]; ok {
		if !now.Before(s.at) {
			delete(b.slots, key)
			return now, 0
		}
		return s.at, s.at.Sub(now)
	}
	r := b.limiter.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait <= 0 {
		return now, 0
	}
	at := now.Add(wait)
	b.slots[key] = slot{at: at, reservation: r}
	return at, wait
}

// drop gives back the slot key holds, if any, at now: its re-issue is no longer wanted.
func (b *rotationBound) drop(key cache.ObjectName, now time.Time) {
	if b.limiter == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.slots[key]; ok {
		s.reservation.CancelAt(now)
		delete(b.slots, key)
	}
}

// rotationBounded reports whether a re-issue from iss because of reason counts against the
// rotation bound: one that moves a certificate to a new root (RootChanged, IncorrectIssuer)
// while the CA's root rotation runs. A missing, expiring or changed certificate is never held
// back by it.
func (c *Controller) rotationBounded(iss issuer, reason string) bool {
	return (reason == policy.ReasonRootChanged || reason == policy.ReasonIncorrectIssuer) &&
		iss.ca != nil && contract.RootRotationRunning(iss.ca)
}

// awaitRotationSlot records that cert's re-issue, called for by reason and message, waits for
// its rotation slot at at (wait from now), and looks again then.
func (c *Controller) awaitRotationSlot(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, in policy.Input,
	at time.Time, wait time.Duration, reason, message string) error {
	log.WithFields(logrus.Fields{"reason": reason, "after": wait}).Debug("re-issue waits for a rotation slot")
	// The slot's time, to the second, is the message's: the syncs that find the same slot
	// write nothing.
	msg := fmt.Sprintf("%s; waiting for a rotation slot at %s (--rotation-reissue-interval spaces the re-issues of a root rotation)",
		message, at.UTC().Truncate(time.Second).Format(time.RFC3339))
	b := newStatus(cert, in.Now).issuing(metav1.ConditionTrue, reason, msg)
	if _, err := c.writeStatus(ctx, b); ignoreStale(err) != nil {
		return err
	}
	return controller.RequeueAfter(wait)
}

// refreshTrust writes the CA's trust bundle into the ca.crt of cert's Secret, keeping its
// certificate and key: during a root rotation the bundle gains the new root and later loses
// the old one, and the certificates stay. No key is made and Vault is not called, so it is
// never held back by the rotation bound. in is the live Secret (decide reads it before any
// write), and the update carries its resourceVersion: a Secret changed meanwhile answers a
// conflict, retried through the queue.
func (c *Controller) refreshTrust(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer, in policy.Input) error {
	s := in.Secret.DeepCopy()
	s.Data[contract.TrustKey] = iss.trustPEM(nil)
	c.metrics.apiWrites.WithLabelValues("secrets", "update").Inc()
	if _, err := c.kube.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update secret %s/%s ca.crt: %w", s.Namespace, s.Name, err)
	}
	msg := fmt.Sprintf("%s in Secret %q now holds the CA's trust bundle (%d root(s)); certificate %s unchanged",
		contract.TrustKey, s.Name, len(iss.trustFingerprints), contract.Serial(in.Data.Leaf.SerialNumber))
	c.recorder.Event(cert, corev1.EventTypeNormal, EventTrustUpdated, msg)
	log.WithField("roots", len(iss.trustFingerprints)).Info("updated the secret's ca.crt to the trust bundle")

	leaf := in.Data.Leaf
	renewal := policy.RenewalTime(cert, leaf)
	b := newStatus(cert, in.Now).current(leaf, renewal).
		roots(secret.ProvenanceOf(s).RootFingerprint, iss.trustFingerprints)
	if _, err := c.writeStatus(ctx, b); err != nil {
		return ignoreStale(err)
	}
	// The Secret's update event brings the Certificate back for the rest (a renewal, a
	// re-issue onto the new root).
	return nil
}
