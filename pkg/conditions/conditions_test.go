package conditions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	earlier = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now     = metav1.NewTime(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
)

// cond builds a condition of type Ready; the options change one field each.
func cond(status metav1.ConditionStatus, reason string, opts ...func(*metav1.Condition)) metav1.Condition {
	c := metav1.Condition{Type: "Ready", Status: status, Reason: reason, Message: reason + " message"}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func at(t metav1.Time) func(*metav1.Condition) {
	return func(c *metav1.Condition) { c.LastTransitionTime = t }
}

func gen(g int64) func(*metav1.Condition) {
	return func(c *metav1.Condition) { c.ObservedGeneration = g }
}

func TestSet(t *testing.T) {
	tests := map[string]struct {
		existing    []metav1.Condition
		set         metav1.Condition
		generation  int64
		wantChanged bool
		want        []metav1.Condition
	}{
		"a new condition is appended with the transition time now": {
			existing:    nil,
			set:         cond(metav1.ConditionTrue, "Issued"),
			generation:  1,
			wantChanged: true,
			want:        []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(now), gen(1))},
		},
		"the same condition again changes nothing": {
			existing:    []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(earlier), gen(1))},
			set:         cond(metav1.ConditionTrue, "Issued"),
			generation:  1,
			wantChanged: false,
			want:        []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(earlier), gen(1))},
		},
		"a new reason with the same status keeps the transition time": {
			existing:    []metav1.Condition{cond(metav1.ConditionFalse, "Pending", at(earlier), gen(1))},
			set:         cond(metav1.ConditionFalse, "VaultUnavailable"),
			generation:  1,
			wantChanged: true,
			want:        []metav1.Condition{cond(metav1.ConditionFalse, "VaultUnavailable", at(earlier), gen(1))},
		},
		"a flipped status moves the transition time to now": {
			existing:    []metav1.Condition{cond(metav1.ConditionFalse, "Pending", at(earlier), gen(1))},
			set:         cond(metav1.ConditionTrue, "Issued"),
			generation:  1,
			wantChanged: true,
			want:        []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(now), gen(1))},
		},
		"a new generation alone is a change": {
			existing:    []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(earlier), gen(1))},
			set:         cond(metav1.ConditionTrue, "Issued"),
			generation:  2,
			wantChanged: true,
			want:        []metav1.Condition{cond(metav1.ConditionTrue, "Issued", at(earlier), gen(2))},
		},
		"other condition types are left alone": {
			existing:    []metav1.Condition{{Type: "Issuing", Status: metav1.ConditionTrue, LastTransitionTime: earlier}},
			set:         cond(metav1.ConditionTrue, "Issued"),
			generation:  3,
			wantChanged: true,
			want: []metav1.Condition{
				{Type: "Issuing", Status: metav1.ConditionTrue, LastTransitionTime: earlier},
				cond(metav1.ConditionTrue, "Issued", at(now), gen(3)),
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conds := append([]metav1.Condition(nil), tc.existing...)
			changed := Set(&conds, tc.set, tc.generation, now)
			assert.Equal(t, tc.wantChanged, changed)
			assert.Equal(t, tc.want, conds)
		})
	}
}

func TestGetAndIsTrue(t *testing.T) {
	conds := []metav1.Condition{
		{Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 2},
		{Type: "Issuing", Status: metav1.ConditionFalse},
	}
	tests := map[string]struct {
		condType  string
		wantFound bool
		wantTrue  bool
	}{
		"a true condition is found and true":   {condType: "Ready", wantFound: true, wantTrue: true},
		"a false condition is found, not true": {condType: "Issuing", wantFound: true},
		"a missing condition is nil, not true": {condType: "Failed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.wantFound, Get(conds, tc.condType) != nil)
			assert.Equal(t, tc.wantTrue, IsTrue(conds, tc.condType))
		})
	}
}
