package certificate

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// firstBackoff is the delay before the first retry of a refused issuance; it doubles with each
// further failure up to the controller's MaxBackoff.
const firstBackoff = 5 * time.Second

// cacheCatchUp bounds how long a sync that recorded a failed issuance waits for the cache to
// show that record.
const cacheCatchUp = 2 * time.Second

// backoffRemaining returns how long cert must still wait before issuance is tried again after
// a refusal, from its status alone (failed attempts, last failure time, and a Ready condition
// that still reports the failure for this generation), so that a restart keeps the backoff;
// a changed spec may try at once.
func (c *Controller) backoffRemaining(cert *v1alpha1.Certificate, now time.Time) time.Duration {
	st := cert.Status
	if st.FailedIssuanceAttempts == 0 || st.LastFailureTime == nil {
		return 0
	}
	ready := conditions.Get(st.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Reason != ReasonIssuanceFailed || ready.ObservedGeneration != cert.Generation {
		return 0
	}
	return st.LastFailureTime.Add(failureBackoff(st.FailedIssuanceAttempts, c.maxBackoff)).Sub(now)
}

// failureBackoff is the delay after attempts failed issuances: 5s, 10s, 20s... up to max.
func failureBackoff(attempts int32, max time.Duration) time.Duration {
	d := firstBackoff
	for i := int32(1); i < attempts && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// awaitCache waits until the cache shows the status of written, which this sync just stored
// (or a newer generation, or no object). An event that came in during the sync queues the
// Certificate again as soon as the sync ends; read from a cache without the failure just
// recorded, that sync would find no backoff and sign again at once. When the cache has not
// caught up in time the error hands the retry to the queue's rate limiter.
func (c *Controller) awaitCache(ctx context.Context, written *v1alpha1.Certificate) error {
	caughtUp := func(context.Context) (bool, error) {
		cached, err := c.certificates.Certificates(written.Namespace).Get(written.Name)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return cached.Generation != written.Generation || equality.Semantic.DeepEqual(cached.Status, written.Status), nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, cacheCatchUp, true, caughtUp); err != nil {
		return fmt.Errorf("wait for the cache to show the failed issuance of %s/%s: %w", written.Namespace, written.Name, err)
	}
	return nil
}
