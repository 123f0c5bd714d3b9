package pod

import (
	"fmt"
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ResourceFieldValue returns the value of an env var's resourceFieldRef for container c, as
// the kubelet computes it: the container's request or limit in units of the divisor (default
// 1), rounded up.
func ResourceFieldValue(c corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	var q resource.Quantity
	var ok bool
	switch ref.Resource {
	case "limits.memory":
		q, ok = c.Resources.Limits[corev1.ResourceMemory]
	case "limits.cpu":
		q, ok = c.Resources.Limits[corev1.ResourceCPU]
	case "requests.memory":
		q, ok = c.Resources.Requests[corev1.ResourceMemory]
	case "requests.cpu":
		q, ok = c.Resources.Requests[corev1.ResourceCPU]
	default:
		return "", fmt.Errorf("resourceFieldRef %q is not resolved locally", ref.Resource)
	}
	if !ok {
		return "", fmt.Errorf("container %s sets no %s", c.Name, ref.Resource)
	}
	divisor := resource.MustParse("1")
	if !ref.Divisor.IsZero() {
		divisor = ref.Divisor
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
}
