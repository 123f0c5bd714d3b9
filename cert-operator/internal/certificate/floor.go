package certificate

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/internal/policy"
	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// holdReissue records that the re-issue of cert, called for by reason and message, waits until
// until (the floor between issuances), and looks again then. The certificate in the Secret stays
// while it still serves; when it does not (expired, missing, damaged), Ready turns False and a
// Warning says so, since a spec or a role that keeps it that way needs a person.
func (c *Controller) holdReissue(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, in policy.Input,
	until time.Time, reason, message string) error {
	msg := fmt.Sprintf("%s: %s; the next issuance waits until %s, as a Certificate is re-issued at most once per %s unless its spec or its %s annotation changes",
		reason, message, until.UTC().Format(time.RFC3339), renewal.ReissueFloor, v1alpha1.AnnotationRenew)
	log.WithFields(logrus.Fields{"reason": reason, "until": until}).Info("re-issue deferred by the floor between issuances")

	b := newStatus(cert, in.Now).issuing(metav1.ConditionFalse, ReasonReissueDeferred, msg)
	eventType := corev1.EventTypeNormal
	if !usable(in, reason) {
		eventType = corev1.EventTypeWarning
		b.ready(metav1.ConditionFalse, ReasonReissueDeferred, msg)
	}
	at := metav1.NewTime(until)
	b.status.RenewalTime = &at
	// One event per deferral, decided from the status: the Issuing reason says whether this
	// one was already announced.
	if issuing := conditions.Get(cert.Status.Conditions, v1alpha1.ConditionIssuing); issuing == nil ||
		issuing.Reason != ReasonReissueDeferred || (eventType == corev1.EventTypeWarning && !sameReadyReason(cert, ReasonReissueDeferred)) {
		c.recorder.Event(cert, eventType, ReasonReissueDeferred, msg)
	}
	c.metrics.reissuesDeferred.Inc()
	c.queue.EnqueueAfter(cache.MetaObjectToName(cert), until.Sub(c.now()))
	_, err := c.writeStatus(ctx, b)
	return ignoreStale(err)
}
