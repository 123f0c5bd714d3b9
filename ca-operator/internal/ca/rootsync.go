package ca

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// stallAfter is how long a root rotation may wait on the same counts before a Warning names
// the Certificates that hold it.
const stallAfter = 10 * time.Minute

// stalledNames is how many holding Certificates a RootRotationStalled Warning names.
const stalledNames = 5

// rootRotation is what rotateRoot leaves for the rest of a sync.
type rootRotation struct {
	// bundle is the trust to publish; nil means the root alone.
	bundle []*x509.Certificate
	// retire is true when the old root is retired once the issuing CA is the new root's.
	retire bool
	// newRoot is the new root, when the rotation has one.
	newRoot *issuer
	// lookAt is when the rotation needs a sync again (the overlap's end, a held start, a
	// stall check); zero when nothing is ahead.
	lookAt time.Time
}

// rotateRoot starts a root rotation when one is due (RootStartDecision) and takes a running one
// as far as it can go now (RootPhase): every step before retiring. It runs before ensureRoot,
// so the rest of the sync sees the root mount's default as this leaves it.
func (c *Controller) rotateRoot(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (rootRotation, error) {
	key := cache.ObjectName{Namespace: ca.Namespace, Name: ca.Name}
	var out rootRotation
	if !rootRotationRunning(status.RootRotation) {
		c.stalls.forget(key)
		started, lookAt, err := c.startRootRotation(ctx, ca, plan, status, now)
		if err != nil || !started {
			out.lookAt = lookAt
			return out, err
		}
	} else if err := c.deferRootRequest(ctx, ca, plan, status, now); err != nil {
		return out, err
	}
	rot := status.RootRotation
	view, err := c.readRootView(ctx, plan, rot)
	if err != nil {
		return out, err
	}
	for {
		var bundleFPs []string
		newFP := ""
		if view.NewRoot != nil {
			newFP = contract.Fingerprint(view.NewRoot.Cert)
			rot.NewRoot = contract.CertificateStatus(view.NewRoot.ID, view.NewRoot.Cert)
			if view.OldRoot != nil {
				bundleFPs = contract.Fingerprints([]*x509.Certificate{view.OldRoot.Cert, view.NewRoot.Cert})
			}
		}
		if view.Cross != nil {
			rot.CrossSigned = contract.CertificateStatus(view.Cross.ID, view.Cross.Cert)
		}
		n, notTrusting, notMoved := c.rootCounts(ca.Namespace, ca.Name, bundleFPs, newFP)
		rot.Trusting, rot.Moved, rot.Total = n.Trusting, n.Moved, n.Total
		step := RootPhase(rot, view, n, now)
		if step.Action != RootMove {
			c.enterRootPhase(ca, plan, rot, step.Phase, view, now)
		}
		out.newRoot = view.NewRoot
		switch step.Phase {
		case v1alpha1.RootRotationTrusting, v1alpha1.RootRotationMoving, v1alpha1.RootRotationOverlap:
			out.bundle = []*x509.Certificate{view.OldRoot.Cert, view.NewRoot.Cert}
		}
		if step.Broken != "" {
			c.setRootRotating(ca, status, metav1.ConditionTrue, string(rot.Phase), step.Broken, now)
			c.recorder.Event(ca, corev1.EventTypeWarning, ReasonRootRotationStalled, step.Broken)
			out.lookAt = now.Add(conflictRecheck)
			return out, nil
		}
		c.setRootRotating(ca, status, metav1.ConditionTrue, string(step.Phase), step.Waits, now)
		switch step.Action {
		case RootMakeNew:
			view.NewRoot, err = c.pki.makeNewRoot(ctx, plan, rot.Tag)
		case RootCrossSign:
			view.Cross, err = c.pki.crossSignNewRoot(ctx, plan, rot.Tag, view.OldRoot, view.NewRoot, now)
		case RootMove:
			// Consumers of the ConfigMap trust the new root before anything is issued under it
			// (a CA without Certificates passes through Trusting within this sync). The phase
			// is Moving only once Vault says so.
			c.enterRootPhase(ca, plan, rot, v1alpha1.RootRotationTrusting, view, now)
			bundle := string(contract.EncodeCertificates(view.OldRoot.Cert, view.NewRoot.Cert))
			status.TrustBundle = bundle
			if err = c.ensureConfigMap(ctx, ca, status, bundle); err == nil {
				if err = c.pki.makeDefaultRoot(ctx, plan.Mounts.Root, view.NewRoot); err == nil {
					view.DefaultID = view.NewRoot.ID
					c.enterRootPhase(ca, plan, rot, v1alpha1.RootRotationMoving, view, now)
				}
			}
		case RootStartOverlap:
			rot.OverlapEnd = &metav1.Time{Time: now.Add(plan.RotationOverlap).Truncate(time.Second)}
		case RootRetire:
			out.retire = true
			return out, nil
		case RootWait:
			out.lookAt = c.watchStall(ca, rot, n, notTrusting, notMoved, now)
			if rot.OverlapEnd != nil && rot.OverlapEnd.After(now) {
				out.lookAt = rot.OverlapEnd.Time
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// startRootRotation starts a root rotation when RootStartDecision says so: status records the
// phase Preparing, the trigger, the tag and the old root before any Vault call (the tag alone
// fixes the names the rotation makes). It reports whether one started and, when a due start is
// held by the floor, when it may start.
func (c *Controller) startRootRotation(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (bool, time.Time, error) {
	if status.Root == nil || status.Issuing == nil || !conditions.IsTrue(ca.Status.Conditions, v1alpha1.ConditionReady) {
		return false, time.Time{}, nil
	}
	d, err := c.rootStartDecision(ctx, ca, plan, status, now)
	if err != nil {
		return false, time.Time{}, err
	}
	if !d.HeldUntil.IsZero() {
		// The message holds only the floor's end, so the recorder folds repeats into one event.
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootRotationDeferred,
			"the root rotation %s starts at %s, not now (%s): a root rotation starts at most once per %s after the last one completed",
			d.Tag, d.HeldUntil.UTC().Format(time.RFC3339), d.Why, RotationFloor)
		return false, d.HeldUntil, nil
	}
	if !d.Start {
		return false, time.Time{}, nil
	}
	status.RootRotation = rootRotationStatusOf(d, status.RootRotation, status.Root, now)
	c.setRootRotating(ca, status, metav1.ConditionTrue, string(v1alpha1.RootRotationPreparing), "the new root is being made in Vault", now)
	if err := c.persistStatus(ctx, ca, status); err != nil {
		return false, time.Time{}, err
	}
	c.metrics.rootPhases.WithLabelValues(string(v1alpha1.RootRotationPreparing)).Inc()
	c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootRotationStarted,
		"root rotation %s started because %s: the new root is made in %s as issuer %s and cross-signed by the old root %s",
		d.Tag, d.Why, plan.Mounts.Root, rootIssuerName(d.Tag), status.Root.FingerprintSHA256)
	return true, time.Time{}, nil
}

// deferRootRequest emits a Normal event when a request (or an automatic start) is due while a
// rotation runs: it waits for that one to complete.
func (c *Controller) deferRootRequest(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) error {
	if tag := rootRequestTag(ca); tag == "" || tag == status.RootRotation.Tag {
		return nil
	}
	d, err := c.rootStartDecision(ctx, ca, plan, status, now)
	if err != nil || !d.Waiting {
		return err
	}
	c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootRotationDeferred,
		"the root rotation %s waits for the running rotation %s to complete, and then at least %s", d.Tag, status.RootRotation.Tag, RotationFloor)
	return nil
}

// rootStartDecision gathers RootStartDecision's input: the tags a start would use that status
// does not answer are looked up in the root mount (root-<tag> exists: answered).
func (c *Controller) rootStartDecision(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (RootStart, error) {
	in := RootStartInput{Last: status.RootRotation, RequestTag: rootRequestTag(ca), RootFingerprint: status.Root.FingerprintSHA256,
		RootNotAfter: status.Root.NotAfter.Time, RotateBefore: plan.RootRotateBefore, Exists: map[string]bool{}, Now: now}
	tags := []string{in.RequestTag}
	if in.RotateBefore > 0 && !now.Before(in.RootNotAfter.Add(-in.RotateBefore)) {
		tags = append(tags, rootAutomaticTag(in.RootFingerprint))
	}
	for _, tag := range tags {
		if tag == "" || (in.Last != nil && in.Last.Tag == tag) {
			continue
		}
		root, err := c.pki.readIssuerRef(ctx, plan.Mounts.Root, rootIssuerName(tag))
		if err != nil {
			return RootStart{}, err
		}
		in.Exists[tag] = root != nil
	}
	return RootStartDecision(in), nil
}

// readRootView reads what the root mount holds of the rotation rot: its default issuer, the old
// root, the new root and the cross.
func (c *Controller) readRootView(ctx context.Context, plan *Plan, rot *v1alpha1.RootRotationStatus) (RootView, error) {
	var v RootView
	var err error
	mount := plan.Mounts.Root
	if v.DefaultID, err = c.pki.defaultIssuerID(ctx, mount); err != nil {
		return v, err
	}
	if v.NewRoot, err = c.pki.readIssuerRef(ctx, mount, rootIssuerName(rot.Tag)); err != nil {
		return v, err
	}
	if v.Cross, err = c.pki.readIssuerRef(ctx, mount, crossIssuerName(rot.Tag)); err != nil {
		return v, err
	}
	if old := rot.OldRoot; old != nil && old.IssuerID != "" {
		if v.OldRoot, err = c.pki.readIssuerRef(ctx, mount, old.IssuerID); err != nil {
			return v, err
		}
		if v.OldRoot != nil && contract.Fingerprint(v.OldRoot.Cert) != old.FingerprintSHA256 {
			v.OldRoot = nil // the ID now names something else: the old root is gone
		}
	}
	return v, nil
}

// enterRootPhase records that rot is at phase now: a Normal event and a metric when the phase
// is new.
func (c *Controller) enterRootPhase(ca *v1alpha1.CertificateAuthority, plan *Plan, rot *v1alpha1.RootRotationStatus,
	phase v1alpha1.RootRotationPhase, v RootView, now time.Time) {
	if rot.Phase == phase {
		return
	}
	rot.Phase = phase
	c.metrics.rootPhases.WithLabelValues(string(phase)).Inc()
	switch phase {
	case v1alpha1.RootRotationTrusting:
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonTrustPublished,
			"the trust bundle (ConfigMap %s, status.trustBundle) holds the old root %s and the new root %s; issuance moves once every issued Certificate's Secret carries it",
			contract.ConfigMapName(ca.Name), rot.OldRoot.FingerprintSHA256, contract.Fingerprint(v.NewRoot.Cert))
	case v1alpha1.RootRotationMoving:
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuanceMoved,
			"the new root %s is the default of %s: a new issuing CA is made under it and every Certificate is re-issued",
			contract.Fingerprint(v.NewRoot.Cert), plan.Mounts.Root)
	case v1alpha1.RootRotationOverlap:
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootRotationOverlap,
			"every Certificate is issued under the new root; both roots stay trusted for %s", plan.RotationOverlap)
	}
}

// watchStall keeps track of a rotation that waits for Certificates and warns once when its
// counts have not moved for stallAfter, naming up to stalledNames Certificates that hold it. It
// returns when to look again (zero when it warned or nothing waits on Certificates).
func (c *Controller) watchStall(ca *v1alpha1.CertificateAuthority, rot *v1alpha1.RootRotationStatus, n RootCounts,
	notTrusting, notMoved []string, now time.Time) time.Time {
	holding := notTrusting
	switch rot.Phase {
	case v1alpha1.RootRotationMoving:
		holding = notMoved
	case v1alpha1.RootRotationTrusting:
	default:
		return time.Time{}
	}
	key := cache.ObjectName{Namespace: ca.Namespace, Name: ca.Name}
	warn, lookAt := c.stalls.note(key, rot.Phase, n, now)
	if warn && len(holding) > 0 {
		more := ""
		if len(holding) > stalledNames {
			more = fmt.Sprintf(" and %d more", len(holding)-stalledNames)
			holding = holding[:stalledNames]
		}
		c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonRootRotationStalled,
			"root rotation %s has waited in phase %s for %s without progress (%d/%d trusting, %d/%d moved); held by Certificate(s) %s%s",
			rot.Tag, rot.Phase, stallAfter, n.Trusting, n.Total, n.Moved, n.Total, strings.Join(holding, ", "), more)
	}
	return lookAt
}

// retireOldRoot finishes a rotation: the trust bundle becomes the new root alone, in the
// ConfigMap first and in status, then the old root, the cross and unused keys leave the root
// mount and the old chain the issuing mount; then the rotation is Completed. It runs after the
// issuing CA has moved to the new root, and every step is idempotent.
func (c *Controller) retireOldRoot(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, newRoot *issuer, now time.Time) error {
	rot := status.RootRotation
	bundle := string(contract.EncodeCertificates(newRoot.Cert))
	status.TrustBundle = bundle
	if err := c.ensureConfigMap(ctx, ca, status, bundle); err != nil {
		return err
	}
	if err := c.persistStatus(ctx, ca, status); err != nil {
		return err
	}
	if err := c.pki.retireRootMount(ctx, plan.Mounts.Root, newRoot); err != nil {
		return err
	}
	oldFP := ""
	if rot.OldRoot != nil {
		oldFP = rot.OldRoot.FingerprintSHA256
	}
	if err := c.pki.retireIssuingMount(ctx, plan.Mounts.Issuing, newRoot, oldFP); err != nil {
		return err
	}
	rot.Phase = v1alpha1.RootRotationCompleted
	rot.CompletionTime = &metav1.Time{Time: now.Truncate(time.Second)}
	c.metrics.rootPhases.WithLabelValues(string(v1alpha1.RootRotationCompleted)).Inc()
	c.setRootRotating(ca, status, metav1.ConditionFalse, string(v1alpha1.RootRotationCompleted),
		fmt.Sprintf("root rotation %s completed at %s: the root is %s", rot.Tag, rot.CompletionTime.UTC().Format(time.RFC3339), contract.Fingerprint(newRoot.Cert)), now)
	c.stalls.forget(cache.ObjectName{Namespace: ca.Namespace, Name: ca.Name})
	c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootRetired,
		"retired the old root %s: the root is %s, the only one trusted; the old issuing CA signs only CRLs until it expires", oldFP, contract.Fingerprint(newRoot.Cert))
	return nil
}

// setRootRotating sets the RootRotating condition.
func (c *Controller) setRootRotating(ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, s metav1.ConditionStatus, reason, msg string, now time.Time) {
	conditions.Set(&status.Conditions, metav1.Condition{Type: v1alpha1.ConditionRootRotating, Status: s, Reason: reason, Message: msg},
		ca.Generation, metav1.NewTime(now))
}

// persistStatus writes status now, in the middle of a sync, because what follows must not
// happen unless it is recorded (a rotation's start, its retiring). Unlike writeStatus it
// fails on a conflict, and it leaves ca as written, so the sync's last write goes on from it.
func (c *Controller) persistStatus(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus) error {
	update := ca.DeepCopy()
	update.Status = *status.DeepCopy()
	written, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("write status before the root rotation goes on (retried): %w", err)
		}
		return fmt.Errorf("write status: %w", err)
	}
	c.metrics.apiWrites.WithLabelValues("status").Inc()
	*ca = *written
	return nil
}

// stallTracker remembers, per CA whose rotation waits for Certificates, the phase and counts it
// last saw and since when. It lives in memory only: after a restart a stall is warned about
// stallAfter later than it could be, never sooner.
type stallTracker struct {
	mu    sync.Mutex
	marks map[cache.ObjectName]stallMark
}

// stallMark is what stallTracker holds per CA.
type stallMark struct {
	phase  v1alpha1.RootRotationPhase
	counts RootCounts
	since  time.Time
	warned bool
}

// newStallTracker returns an empty tracker.
func newStallTracker() *stallTracker { return &stallTracker{marks: map[cache.ObjectName]stallMark{}} }

// note records the phase and counts of key at now and reports whether they have stood still
// for stallAfter, for the first time, and when to look again (zero once warned).
func (s *stallTracker) note(key cache.ObjectName, phase v1alpha1.RootRotationPhase, n RootCounts, now time.Time) (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.marks[key]
	if !ok || m.phase != phase || m.counts != n {
		m = stallMark{phase: phase, counts: n, since: now}
	}
	warn := false
	if !m.warned && !now.Before(m.since.Add(stallAfter)) {
		m.warned, warn = true, true
	}
	s.marks[key] = m
	if m.warned {
		return warn, time.Time{}
	}
	return false, m.since.Add(stallAfter)
}

// forget drops what the tracker holds of key.
func (s *stallTracker) forget(key cache.ObjectName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.marks, key)
}
