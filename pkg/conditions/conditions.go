// Package conditions reads and writes the standard []metav1.Condition of an object's status,
// keeping lastTransitionTime unless the status flips and recording the observed generation.
package conditions

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Set puts c into conds (replacing the condition of the same type) with ObservedGeneration set
// to generation, keeping the existing LastTransitionTime unless the status changes (then it is
// now); it reports whether anything changed, so callers write status only when it did.
func Set(conds *[]metav1.Condition, c metav1.Condition, generation int64, now metav1.Time) (changed bool) {
	c.ObservedGeneration = generation
	for i := range *conds {
		existing := &(*conds)[i]
		if existing.Type != c.Type {
			continue
		}
		if existing.Status == c.Status {
			c.LastTransitionTime = existing.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		if *existing == c {
			return false
		}
		*existing = c
		return true
	}
	c.LastTransitionTime = now
	*conds = append(*conds, c)
	return true
}

// Get returns the condition of type t, or nil when conds has none.
func Get(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// IsTrue reports whether conds has a condition of type t whose status is True.
func IsTrue(conds []metav1.Condition, t string) bool {
	c := Get(conds, t)
	return c != nil && c.Status == metav1.ConditionTrue
}
