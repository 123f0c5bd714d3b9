package policy

import (
	"time"

	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
)

// ReissueHeld reports whether a re-issue that a check of in called for must wait, and until
// when: it must when the last issuance (LastIssuance) was less than renewal.ReissueFloor ago,
// unless the spec changed since then or a person asked for a renewal. Both exceptions are read
// from the object and its Secret, not from memory, so a restart keeps the floor.
func ReissueHeld(in Input) (until time.Time, held bool) {
	until = renewal.NextIssuance(LastIssuance(in.Certificate, in.Data.Leaf), renewal.ReissueFloor)
	if until.IsZero() || !in.Now.Before(until) {
		return time.Time{}, false
	}
	if specOrRequestChanged(in) {
		return time.Time{}, false
	}
	return until, true
}

// specOrRequestChanged reports whether the Certificate's spec changed since it was last looked
// at (its generation is not the one its status describes) or since its certificate was issued
// (the Secret records another spec), or whether its renew annotation asks for a renewal the
// certificate in the Secret was not issued for.
func specOrRequestChanged(in Input) bool {
	if in.Certificate.Generation != in.Certificate.Status.ObservedGeneration {
		return true
	}
	if in.Secret == nil || !ours(in) {
		return false
	}
	_, _, specChanged := SpecChanged(in)
	_, _, requested := RenewRequested(in)
	return specChanged || requested
}

// ours reports whether in's Secret is this Certificate's, so what it records can be trusted.
func ours(in Input) bool {
	_, _, conflict := SecretNotOurs(in)
	return !conflict
}
