package renewal

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNextIssuance(t *testing.T) {
	last := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		last time.Time
		want time.Time // zero: at once
	}{
		"a certificate never issued may be issued at once":  {last: time.Time{}, want: time.Time{}},
		"a re-issue waits for the floor after the last one": {last: last, want: last.Add(ReissueFloor)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, NextIssuance(tc.last, ReissueFloor))
		})
	}
}

func TestCeilSecond(t *testing.T) {
	s := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in, want time.Time
	}{
		"a whole second stays":          {in: s, want: s},
		"a fraction rounds up":          {in: s.Add(time.Millisecond), want: s.Add(time.Second)},
		"just under a second rounds up": {in: s.Add(999 * time.Millisecond), want: s.Add(time.Second)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, CeilSecond(tc.in))
		})
	}
}
