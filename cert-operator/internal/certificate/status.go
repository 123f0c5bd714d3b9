package certificate

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// errStale says a write lost a race with another change of the object; the event of that
// change queues the object again, so the sync ends without an error.
var errStale = errors.New("object changed since it was read")

// statusBuilder edits a copy of a Certificate's status.
type statusBuilder struct {
	cert   *v1alpha1.Certificate
	status v1alpha1.CertificateStatus
	now    metav1.Time
}

// newStatus starts editing cert's status at time now.
func newStatus(cert *v1alpha1.Certificate, now time.Time) *statusBuilder {
	b := &statusBuilder{cert: cert, status: *cert.Status.DeepCopy(), now: metav1.NewTime(now.Truncate(time.Second))}
	b.status.ObservedGeneration = cert.Generation
	return b
}

// condition sets condition typ to status with reason and message.
func (b *statusBuilder) condition(typ string, status metav1.ConditionStatus, reason, message string) *statusBuilder {
	conditions.Set(&b.status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}, b.cert.Generation, b.now)
	return b
}

// ready sets Ready to status with reason and message.
func (b *statusBuilder) ready(status metav1.ConditionStatus, reason, message string) *statusBuilder {
	return b.condition(v1alpha1.ConditionReady, status, reason, message)
}

// issuing sets Issuing to status with reason and message.
func (b *statusBuilder) issuing(status metav1.ConditionStatus, reason, message string) *statusBuilder {
	return b.condition(v1alpha1.ConditionIssuing, status, reason, message)
}

// current records leaf as the certificate in the Secret, due for renewal at renewal, and clears
// the failure record.
func (b *statusBuilder) current(leaf *x509.Certificate, renewal time.Time) *statusBuilder {
	notBefore, notAfter := metav1.NewTime(leaf.NotBefore), metav1.NewTime(leaf.NotAfter)
	// The API keeps seconds, so a finer time would differ from the stored one on every sync.
	renewalTime := metav1.NewTime(renewal.Truncate(time.Second))
	b.status.NotBefore, b.status.NotAfter, b.status.RenewalTime = &notBefore, &notAfter, &renewalTime
	b.status.SerialNumber = contract.Serial(leaf.SerialNumber)
	b.status.FailedIssuanceAttempts = 0
	b.status.LastFailureTime = nil
	return b
}

// roots records the root the certificate in the Secret was issued under (its fingerprint) and
// the fingerprints of the roots its ca.crt holds, which the ca-operator counts during a root
// rotation.
func (b *statusBuilder) roots(issuedUnder string, trusted []string) *statusBuilder {
	b.status.RootFingerprintSHA256 = issuedUnder
	if !slices.Equal(b.status.TrustedRootsSHA256, trusted) {
		// A copy: trusted may be the Secret cache's shared slice.
		b.status.TrustedRootsSHA256 = slices.Clone(trusted)
	}
	return b
}

// issued records that Vault signed a certificate for the Certificate at signedAt.
func (b *statusBuilder) issued(signedAt time.Time) *statusBuilder {
	t := metav1.NewTime(signedAt)
	b.status.LastIssuanceTime = &t
	return b
}

// view returns the Certificate with the edited status, for decisions that read the status.
func (b *statusBuilder) view() *v1alpha1.Certificate {
	cert := b.cert.DeepCopy()
	cert.Status = *b.status.DeepCopy()
	return cert
}

// failed counts one more failed issuance, now.
func (b *statusBuilder) failed() *statusBuilder {
	b.status.FailedIssuanceAttempts++
	t := b.now
	b.status.LastFailureTime = &t
	return b
}

// write stores the edited status when it differs from the Certificate's and returns the
// Certificate as the API server now has it; a conflict or a deleted object gives errStale.
func (c *Controller) writeStatus(ctx context.Context, b *statusBuilder) (*v1alpha1.Certificate, error) {
	if equality.Semantic.DeepEqual(b.cert.Status, b.status) {
		return b.cert, nil
	}
	cert := b.cert.DeepCopy()
	cert.Status = b.status
	c.metrics.apiWrites.WithLabelValues("status", "update").Inc()
	updated, err := c.client.ClusterpkiV1alpha1().Certificates(cert.Namespace).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil, errStale
	}
	if err != nil {
		return nil, err
	}
	return updated, nil
}
