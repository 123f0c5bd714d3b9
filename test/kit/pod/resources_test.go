package pod

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestResourceFieldValue(t *testing.T) {
	c := corev1.Container{Name: "op", Resources: corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}}
	tests := map[string]struct {
		ref     corev1.ResourceFieldSelector
		want    string
		wantErr bool
	}{
		"memory limit in bytes":       {ref: corev1.ResourceFieldSelector{Resource: "limits.memory"}, want: "268435456"},
		"memory limit in Mi":          {ref: corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}, want: "256"},
		"cpu limit rounds up":         {ref: corev1.ResourceFieldSelector{Resource: "limits.cpu"}, want: "1"},
		"memory request":              {ref: corev1.ResourceFieldSelector{Resource: "requests.memory"}, want: "67108864"},
		"unset request is an error":   {ref: corev1.ResourceFieldSelector{Resource: "requests.cpu"}, wantErr: true},
		"unknown resource is refused": {ref: corev1.ResourceFieldSelector{Resource: "limits.ephemeral-storage"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ResourceFieldValue(c, &tc.ref)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
