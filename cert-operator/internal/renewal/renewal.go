// Package renewal computes when a certificate is renewed: a fixed time before it expires, moved
// a little earlier by a jitter that depends only on the certificate's name, so a thousand
// certificates issued together do not all renew in the same second, yet a restart schedules
// each one at exactly the same instant.
package renewal

import (
	"hash/fnv"
	"time"
)

// Default fraction of the lifetime left when a certificate is renewed.
const defaultRenewBeforeDivisor = 3

// Jitter bounds: at most maxJitterFraction of the lifetime, and never more than MaxJitter.
const (
	maxJitterFraction = 100 // 1%
	MaxJitter         = 3 * time.Minute
)

// Policy is how early before expiry a certificate is renewed.
type Policy struct {
	// RenewBefore is the time before notAfter to renew at; zero means unset.
	RenewBefore time.Duration
	// Percentage renews when this percentage of the lifetime remains; nil means unset.
	Percentage *int32
}

// Schedule returns when a certificate valid from notBefore to notAfter, known as key
// (namespace/name), is renewed under policy: notAfter minus RenewBefore (or Percentage of the
// lifetime, or a third of it by default), minus a deterministic jitter of at most 1% of the
// lifetime capped at MaxJitter. A RenewBefore at least as long as the lifetime (Vault capped the
// ttl) falls back to the default, so a short certificate is not renewed in a loop; the result is
// never before notBefore nor after notAfter.
func Schedule(notBefore, notAfter time.Time, policy Policy, key string) time.Time {
	lifetime := notAfter.Sub(notBefore)
	if lifetime <= 0 {
		return notAfter
	}
	before := lifetime / defaultRenewBeforeDivisor
	switch {
	case policy.RenewBefore > 0 && policy.RenewBefore < lifetime:
		before = policy.RenewBefore
	case policy.Percentage != nil && *policy.Percentage > 0 && *policy.Percentage < 100:
		before = time.Duration(int64(lifetime) / 100 * int64(*policy.Percentage))
	}
	at := notAfter.Add(-before).Add(-Jitter(lifetime, key))
	if at.Before(notBefore) {
		return notBefore
	}
	return at
}

// Jitter returns the deterministic offset for key: a value in [0, min(lifetime/100, MaxJitter))
// taken from a hash of key.
func Jitter(lifetime time.Duration, key string) time.Duration {
	window := min(lifetime/maxJitterFraction, MaxJitter)
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(window))
}
