package kube

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultFinalizerTimeout is how long after an object's deletion the operators keep trying the
// Vault work its finalizer guards before they let the object go: long enough to ride out a Vault
// restart or a leader change, short enough that deleting a namespace never hangs in Terminating.
const DefaultFinalizerTimeout = 5 * time.Minute

// FinalizerDeadline returns when finalizer work on obj is given up: timeout after its
// deletionTimestamp, which the API server keeps, so a restarted operator keeps the same
// deadline. It returns the zero time for an object that is not being deleted.
func FinalizerDeadline(obj metav1.Object, timeout time.Duration) time.Time {
	deleted := obj.GetDeletionTimestamp()
	if deleted == nil {
		return time.Time{}
	}
	return deleted.Add(timeout)
}
