package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// eventLogVerbosity is the klog verbosity events are logged at, which the logging bridge turns
// into Debug: the events themselves are the user-facing record.
const eventLogVerbosity = 2

// NewEventRecorder returns a recorder whose events, attributed to component, are written to the
// API server and logged at debug level, and the function that flushes and stops it; scheme must
// know the kinds of the objects events are recorded for.
func NewEventRecorder(client CoreClient, scheme *runtime.Scheme, component string) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartStructuredLogging(eventLogVerbosity)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme, corev1.EventSource{Component: component})
	return recorder, broadcaster.Shutdown
}
