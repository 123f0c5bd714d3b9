package ca

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// A root rotation replaces a CA's root without an outage (ROTATION-DESIGN §3): a new root made
// in the root mount and cross-signed by the old one (Preparing), both trusted (Trusting), the
// new root the mount's default and signing a new issuing CA (Moving), both still trusted for
// spec.root.rotationOverlap (Overlap), then the old root retired (Retiring, Completed).
// Idempotency rests on Vault names fixed by the rotation's tag before any call (root-<tag>,
// cross-<tag>), and on the root mount's default issuer as the one switch: each phase is
// derived from Vault and status by RootPhase, so a restart or a lost answer after any Vault
// write finishes the rotation exactly once.

// rootIssuerName is the Vault issuer and key name of the new root of the rotation tagged tag.
func rootIssuerName(tag string) string { return "root-" + tag }

// crossIssuerName is the Vault issuer name of the new root's certificate cross-signed by the
// old root, in the rotation tagged tag.
func crossIssuerName(tag string) string { return "cross-" + tag }

// rootRequestTag is the tag of the root rotation the rotate-root annotation of ca requests:
// "r" and the hex of the first 4 bytes of the SHA-256 of its value; "" when unset.
func rootRequestTag(ca *v1alpha1.CertificateAuthority) string {
	v := ca.Annotations[v1alpha1.AnnotationRotateRoot]
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return "r" + hex.EncodeToString(sum[:4])
}

// rootAutomaticTag is the tag of an automatic rotation away from the root whose fingerprint is
// rootFP: "a" and its first 8 hex digits, so one root is rotated away once.
func rootAutomaticTag(rootFP string) string {
	if len(rootFP) > 8 {
		rootFP = rootFP[:8]
	}
	return "a" + rootFP
}

// RootStartInput is what RootStartDecision decides from.
type RootStartInput struct {
	// Last is status.rootRotation: the running or the last rotation (nil when none ever ran).
	Last *v1alpha1.RootRotationStatus
	// RequestTag is rootRequestTag of the CA ("" without the annotation).
	RequestTag string
	// RootFingerprint and RootNotAfter describe the root that signs now (status.root).
	RootFingerprint string
	RootNotAfter    time.Time
	// RotateBefore is spec.root.rotateBefore (0 when unset: no automatic start).
	RotateBefore time.Duration
	// Exists holds the tags whose root-<tag> issuer the root mount holds (only the tags asked
	// about need be present).
	Exists map[string]bool
	// Now is the time of the decision.
	Now time.Time
}

// RootStart is what RootStartDecision decides.
type RootStart struct {
	// Start is true when a rotation starts now, with Trigger and Tag.
	Start   bool
	Trigger v1alpha1.RootRotationTrigger
	Tag     string
	// Why says why a rotation is due (started or held); empty when none is.
	Why string
	// Waiting is true when a due rotation waits for the running one to complete.
	Waiting bool
	// HeldUntil is when a due rotation held by RotationFloor may start; zero when none is held.
	HeldUntil time.Time
}

// RootStartDecision decides whether a root rotation starts: on a request (the rotate-root
// annotation) not answered yet, or automatically once the root has less than rotateBefore
// left; a tag is answered when it is the last rotation's, the last request answered (kept
// across automatic rotations, whose retirement deletes the root a request made) or its
// root-<tag> exists in the root mount. At most one runs: a due start waits for the running one, and for RotationFloor after
// the last one completed. A request goes before an automatic start.
func RootStartDecision(in RootStartInput) RootStart {
	answered := func(tag string) bool {
		return tag == "" || (in.Last != nil && (in.Last.Tag == tag || in.Last.LastRequestTag == tag)) || in.Exists[tag]
	}
	var due RootStart
	switch auto := rootAutomaticTag(in.RootFingerprint); {
	case !answered(in.RequestTag):
		due = RootStart{Trigger: v1alpha1.RootRotationRequested, Tag: in.RequestTag,
			Why: "rotation was requested with the " + v1alpha1.AnnotationRotateRoot + " annotation"}
	case in.RotateBefore > 0 && in.RootFingerprint != "" && !in.Now.Before(in.RootNotAfter.Add(-in.RotateBefore)) && !answered(auto):
		due = RootStart{Trigger: v1alpha1.RootRotationAutomatic, Tag: auto,
			Why: fmt.Sprintf("the root expires at %s, within spec.root.rotateBefore (%s)", in.RootNotAfter.UTC().Format(time.RFC3339), in.RotateBefore)}
	default:
		return RootStart{}
	}
	switch {
	case rootRotationRunning(in.Last):
		due.Waiting = true
	case in.Last != nil && in.Last.CompletionTime != nil && in.Now.Before(in.Last.CompletionTime.Add(RotationFloor)):
		due.HeldUntil = in.Last.CompletionTime.Add(RotationFloor)
	default:
		due.Start = true
	}
	return due
}

// rootRotationRunning reports whether rot is a rotation under way (a phase before Completed).
func rootRotationRunning(rot *v1alpha1.RootRotationStatus) bool {
	return rot != nil && rot.Phase != "" && rot.Phase != v1alpha1.RootRotationCompleted
}

// RootView is what the root mount holds of a running rotation.
type RootView struct {
	// DefaultID is the root mount's default issuer.
	DefaultID string
	// OldRoot is the root being replaced (status.rootRotation.oldRoot's issuer); nil once
	// deleted.
	OldRoot *issuer
	// NewRoot is the issuer root-<tag>; nil until made.
	NewRoot *issuer
	// Cross is the issuer cross-<tag>; nil until imported and named.
	Cross *issuer
}

// RootCounts are the Certificates of a CA that hold a certificate (Total), those whose Secret's ca.crt is the
// trust bundle (Trusting) and those issued under the new root (Moved).
type RootCounts struct {
	Trusting, Moved, Total int32
}

// RootAction is the Vault or status work a rotation does next.
type RootAction int

// Root rotation actions, in the order a rotation takes them.
const (
	// RootWait: nothing to do until something changes (counts, time).
	RootWait RootAction = iota
	// RootMakeNew: make the new root root-<tag> (Vault step 1).
	RootMakeNew
	// RootCrossSign: cross-sign it with the old root and import that as cross-<tag> (2–5).
	RootCrossSign
	// RootMove: make the new root the root mount's default issuer and key (6).
	RootMove
	// RootStartOverlap: set overlapEnd = now + spec.root.rotationOverlap.
	RootStartOverlap
	// RootRetire: publish the new root alone, then retire the old one in Vault (8–9).
	RootRetire
)

// RootStep is what RootPhase decides: the phase a rotation is at and what to do now.
type RootStep struct {
	Phase  v1alpha1.RootRotationPhase
	Action RootAction
	// Waits says what the phase waits for, for the RootRotating condition.
	Waits string
	// Broken says why the rotation cannot go on without a person; empty normally.
	Broken string
}

// RootPhase derives the phase of the running rotation rot from what the root mount holds (v),
// the counts and now, and says what to do next. Status alone is never trusted for what Vault
// holds: Vault says whether the new root and the cross exist and which root is the default;
// status adds only what Vault cannot hold (the overlap's end, and that retiring began).
func RootPhase(rot *v1alpha1.RootRotationStatus, v RootView, n RootCounts, now time.Time) RootStep {
	switch {
	case rot.Phase == v1alpha1.RootRotationRetiring:
		return RootStep{Phase: v1alpha1.RootRotationRetiring, Action: RootRetire, Waits: "the old root is being retired in Vault"}
	case v.NewRoot == nil && (rot.Phase == v1alpha1.RootRotationMoving || rot.Phase == v1alpha1.RootRotationOverlap):
		return RootStep{Phase: rot.Phase, Broken: fmt.Sprintf("the new root %s is missing from the root mount", rootIssuerName(rot.Tag))}
	case v.NewRoot == nil:
		return RootStep{Phase: v1alpha1.RootRotationPreparing, Action: RootMakeNew, Waits: "the new root is being made in Vault"}
	case v.DefaultID == v.NewRoot.ID && v.OldRoot == nil:
		return RootStep{Phase: v1alpha1.RootRotationRetiring, Action: RootRetire, Waits: "the old root is being retired in Vault"}
	case v.DefaultID == v.NewRoot.ID && rot.OverlapEnd == nil && n.Moved >= n.Total:
		return RootStep{Phase: v1alpha1.RootRotationOverlap, Action: RootStartOverlap}
	case v.DefaultID == v.NewRoot.ID && rot.OverlapEnd == nil:
		return RootStep{Phase: v1alpha1.RootRotationMoving,
			Waits: fmt.Sprintf("%d of %d Certificates are issued under the new root", n.Moved, n.Total)}
	case v.DefaultID == v.NewRoot.ID && now.Before(rot.OverlapEnd.Time):
		return RootStep{Phase: v1alpha1.RootRotationOverlap,
			Waits: fmt.Sprintf("both roots stay trusted until %s", rot.OverlapEnd.UTC().Format(time.RFC3339))}
	case v.DefaultID == v.NewRoot.ID:
		return RootStep{Phase: v1alpha1.RootRotationRetiring, Action: RootRetire, Waits: "the old root is being retired in Vault"}
	case v.OldRoot == nil:
		return RootStep{Phase: rot.Phase, Broken: "the old root is missing from the root mount while it is still the default"}
	case v.Cross == nil:
		return RootStep{Phase: v1alpha1.RootRotationPreparing, Action: RootCrossSign, Waits: "the new root is being cross-signed by the old one"}
	case n.Trusting >= n.Total:
		return RootStep{Phase: v1alpha1.RootRotationMoving, Action: RootMove}
	}
	return RootStep{Phase: v1alpha1.RootRotationTrusting,
		Waits: fmt.Sprintf("%d of %d Certificates carry the trust bundle", n.Trusting, n.Total)}
}
