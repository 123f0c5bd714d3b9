package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFinalizerDeadline(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	tests := map[string]struct {
		obj  *corev1.Secret
		want time.Time // zero: not being deleted
	}{
		"an object being deleted gives up timeout after its deletionTimestamp": {
			obj:  &corev1.Secret{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted}},
			want: deleted.Add(5 * time.Minute),
		},
		"an object not being deleted has no deadline": {
			obj: &corev1.Secret{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, FinalizerDeadline(tc.obj, 5*time.Minute))
		})
	}
}
