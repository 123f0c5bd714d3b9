package ca

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// RotationFloor is the shortest time between two rotations of a CA's issuing CA, unless the
// root changed under it. Every rotation leaves the old issuing CA in Vault until it expires
// (CRLs need it), and every sync reads them all, so a rotate-issuer annotation changed in a
// loop, or a rotation window the issuing CA keeps falling back into, would grow Vault and
// slow every sync without bound. The first request after a quiet spell is never held, so a
// person is answered at once, while a loop costs at most 12 issuers an hour.
const RotationFloor = 5 * time.Minute

// issuerMargin is how much sooner than its root an issuing CA must end: newIssuingCA never
// asks the root for a later notAfter.
const issuerMargin = time.Minute

// IssuingVerdict is what IssuingDecision decides about a CA's issuing CA.
type IssuingVerdict struct {
	// Rotate is true when a new issuing CA is made now.
	Rotate bool
	// Why says why a rotation is due (made now or held); empty when none is.
	Why string
	// HeldUntil is when a rotation that is due but held by RotationFloor may happen; zero
	// when none is held.
	HeldUntil time.Time
	// Stuck is true when the issuing CA is inside its rotation window and every new one would
	// be born inside it too, because the root ends too soon: it is not rotated, and the root
	// needs a person.
	Stuck bool
}

// IssuingDecision decides whether current, the default issuer of the issuing mount (nil when
// there is none), is replaced under root, for a CA that replaces issuing CAs rotateBefore
// before they expire and whose rotate-issuer annotation hashes to requestTag ("" when unset),
// at now. A missing issuing CA, or one from another root, is replaced at once; one in its
// rotation window at most once per RotationFloor after the last rotation; one a new request
// asks to replace at once, unless it answered a request itself, then after the floor too (so a
// request repeated in a loop is answered at most once per floor); one that cannot leave its
// window is kept unless a person asks.
func IssuingDecision(current, root *issuer, rotateBefore time.Duration, requestTag string, now time.Time) IssuingVerdict {
	switch {
	case current == nil:
		return IssuingVerdict{Rotate: true, Why: "the issuing mount has no issuing CA"}
	case current.Cert.CheckSignatureFrom(root.Cert) != nil:
		return IssuingVerdict{Rotate: true, Why: "the issuing CA was not signed by the current root"}
	}
	inWindow := !now.Before(current.Cert.NotAfter.Add(-rotateBefore))
	requested := requestTag != "" && !strings.HasSuffix(current.Name, "-"+requestTag)
	var why string
	switch {
	case requested:
		why = "rotation was requested with the " + v1alpha1.AnnotationRotateIssuer + " annotation"
	case inWindow && RootTooShort(root.Cert.NotAfter, rotateBefore, now):
		return IssuingVerdict{Stuck: true, Why: fmt.Sprintf("the issuing CA expires at %s, inside its replacement window, but the root expires at %s, too soon for any new issuing CA to live outside that window",
			current.Cert.NotAfter.UTC().Format(time.RFC3339), root.Cert.NotAfter.UTC().Format(time.RFC3339))}
	case inWindow:
		why = fmt.Sprintf("the issuing CA expires at %s, inside its replacement window", current.Cert.NotAfter.UTC().Format(time.RFC3339))
	default:
		return IssuingVerdict{}
	}
	// A request is held only when the issuing CA itself answered one: the first request after
	// a quiet spell is answered at once, a repeated one at most once per floor.
	if requested && !answeredRequest(current) {
		return IssuingVerdict{Rotate: true, Why: why}
	}
	if until := lastRotation(current).Add(RotationFloor); now.Before(until) {
		return IssuingVerdict{Why: why, HeldUntil: until}
	}
	return IssuingVerdict{Rotate: true, Why: why}
}

// answeredRequest reports whether the issuing CA iss was made for a rotation request: its
// name (issuing-<unix seconds>-<request tag>) carries a request tag.
func answeredRequest(iss *issuer) bool {
	rest, ok := strings.CutPrefix(iss.Name, "issuing-")
	if !ok {
		return false
	}
	_, tag, _ := strings.Cut(rest, "-")
	return tag != ""
}

// RootTooShort reports whether a root ending at rootNotAfter has so little life left at now
// that an issuing CA made now (which ends issuerMargin before the root) would be born inside
// its rotation window of rotateBefore.
func RootTooShort(rootNotAfter time.Time, rotateBefore time.Duration, now time.Time) bool {
	return rootNotAfter.Sub(now)-issuerMargin <= rotateBefore
}

// lastRotation returns when the issuing CA iss was made, as Vault tells: the time in its name
// (issuing-<unix seconds>[-<request tag>], given at creation), or else its notBefore, which
// Vault back-dates by 30 seconds and so only bounds it from below.
func lastRotation(iss *issuer) time.Time {
	made := iss.Cert.NotBefore
	if rest, ok := strings.CutPrefix(iss.Name, "issuing-"); ok {
		secs, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.ParseInt(secs, 10, 64); err == nil {
			if named := time.Unix(n, 0).UTC(); named.After(made) {
				made = named
			}
		}
	}
	return made
}

// rootExpiringCondition returns the RootExpiring condition of a root that ends at rootNotAfter,
// for a CA with plan, at now: True when the root has too little life left for a new issuing
// CA to live outside its rotation window (ReasonRootTooShort: rotation has stopped), or when
// it is within plan.ExpiryWarning of its end (ReasonRootExpiring); False otherwise.
func rootExpiringCondition(rootNotAfter time.Time, plan *Plan, now time.Time) metav1.Condition {
	end := rootNotAfter.UTC().Format(time.RFC3339)
	switch {
	case RootTooShort(rootNotAfter, plan.RotateBefore, now):
		return metav1.Condition{Type: v1alpha1.ConditionRootExpiring, Status: metav1.ConditionTrue, Reason: ReasonRootTooShort,
			Message: fmt.Sprintf("root expires at %s, less than spec.issuing.rotateBefore (%s) plus a minute away: every new issuing CA would be born inside its rotation window, so the issuing CA is no longer rotated; the root needs attention (plan a new CA)",
				end, plan.RotateBefore)}
	case !now.Before(rootNotAfter.Add(-plan.ExpiryWarning)):
		return metav1.Condition{Type: v1alpha1.ConditionRootExpiring, Status: metav1.ConditionTrue, Reason: ReasonRootExpiring,
			Message: fmt.Sprintf("root expires at %s, within %s; plan a new CA", end, plan.ExpiryWarning)}
	}
	return metav1.Condition{Type: v1alpha1.ConditionRootExpiring, Status: metav1.ConditionFalse, Reason: ReasonRootValid,
		Message: fmt.Sprintf("root expires at %s", end)}
}
