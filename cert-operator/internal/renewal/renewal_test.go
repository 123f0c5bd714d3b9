package renewal

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pct := func(p int32) *int32 { return &p }
	tests := map[string]struct {
		lifetime time.Duration
		policy   Policy
		// wantBefore is how long before notAfter the renewal falls, not counting the jitter.
		wantBefore time.Duration
	}{
		"by default a third of the lifetime remains": {
			lifetime: 90 * 24 * time.Hour, wantBefore: 30 * 24 * time.Hour,
		},
		"renewBefore is used as given": {
			lifetime: 30 * 24 * time.Hour, policy: Policy{RenewBefore: 7 * 24 * time.Hour}, wantBefore: 7 * 24 * time.Hour,
		},
		"a percentage of the lifetime remains": {
			lifetime: 100 * time.Hour, policy: Policy{Percentage: pct(25)}, wantBefore: 25 * time.Hour,
		},
		"renewBefore as long as a capped lifetime falls back to a third": {
			lifetime: 30 * time.Second, policy: Policy{RenewBefore: time.Minute}, wantBefore: 10 * time.Second,
		},
		"short test certificates renew seconds before expiry": {
			lifetime: 50 * time.Second, policy: Policy{RenewBefore: 10 * time.Second}, wantBefore: 10 * time.Second,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			notAfter := start.Add(tc.lifetime)
			got := Schedule(start, notAfter, tc.policy, "team-a/web")
			jitter := notAfter.Add(-tc.wantBefore).Sub(got)
			assert.GreaterOrEqual(t, jitter, time.Duration(0), "renewal must not fall after notAfter-renewBefore")
			assert.Less(t, jitter, min(tc.lifetime/100, MaxJitter)+1, "jitter is at most 1%% of the lifetime")
			assert.Equal(t, got, Schedule(start, notAfter, tc.policy, "team-a/web"), "the schedule is deterministic")
			assert.False(t, got.Before(start))
			assert.False(t, got.After(notAfter))
		})
	}
}

func TestScheduleDegenerateLifetimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, start, Schedule(start, start, Policy{}, "a/b"), "a zero lifetime renews at once")
	assert.Equal(t, start, Schedule(start.Add(time.Hour), start, Policy{}, "a/b"), "an inverted lifetime renews at notAfter")
}

func TestJitterIsCappedAndSpread(t *testing.T) {
	year := 365 * 24 * time.Hour
	seen := map[time.Duration]bool{}
	for i := range 1000 {
		j := Jitter(year, fmt.Sprintf("ns/cert-%d", i))
		assert.Less(t, j, MaxJitter)
		seen[j.Truncate(time.Second)] = true
	}
	// A thousand certificates made together spread over most of the 180 one-second slots.
	assert.Greater(t, len(seen), 150)
	assert.Equal(t, time.Duration(0), Jitter(99*time.Nanosecond, "ns/x"), "no jitter below a tiny window")
}
