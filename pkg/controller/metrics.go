package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

var (
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace,
		Subsystem: "controller",
		Name:      "sync_duration_seconds",
		Help:      "Time one sync of one key took, by controller and result (success, requeue, error).",
		Buckets:   metrics.DurationBuckets,
	}, []string{"controller", "result"})

	syncErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "controller",
		Name:      "sync_errors_total",
		Help:      "Syncs that returned an error and were retried with backoff, by controller.",
	}, []string{"controller"})

	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metrics.Namespace,
		Subsystem: "controller",
		Name:      "queue_depth",
		Help:      "Keys waiting in the controller's work queue.",
	}, []string{"controller"})

	queueAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "controller",
		Name:      "queue_adds_total",
		Help:      "Keys added to the controller's work queue.",
	}, []string{"controller"})

	queueRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "controller",
		Name:      "queue_retries_total",
		Help:      "Keys re-added to the controller's work queue with backoff.",
	}, []string{"controller"})
)

func init() {
	// The definitions above are constants of this package, so registering them can fail only
	// through a programming error, which MustRegister reports at start-up.
	metrics.Registry.MustRegister(syncDuration, syncErrors, queueDepth, queueAdds, queueRetries)
}

// queueMetrics is a workqueue.MetricsProvider reporting depth, adds and retries into
// metrics.Registry; the latency metrics are left out because sync_duration_seconds covers them.
type queueMetrics struct{}

var _ workqueue.MetricsProvider = queueMetrics{}

// NewDepthMetric returns the queue depth gauge of the queue called name.
func (queueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return queueDepth.WithLabelValues(name)
}

// NewAddsMetric returns the adds counter of the queue called name.
func (queueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return queueAdds.WithLabelValues(name)
}

// NewLatencyMetric returns a no-op histogram.
func (queueMetrics) NewLatencyMetric(string) workqueue.HistogramMetric { return noopMetric{} }

// NewWorkDurationMetric returns a no-op histogram.
func (queueMetrics) NewWorkDurationMetric(string) workqueue.HistogramMetric { return noopMetric{} }

// NewUnfinishedWorkSecondsMetric returns a no-op gauge.
func (queueMetrics) NewUnfinishedWorkSecondsMetric(string) workqueue.SettableGaugeMetric {
	return noopMetric{}
}

// NewLongestRunningProcessorSecondsMetric returns a no-op gauge.
func (queueMetrics) NewLongestRunningProcessorSecondsMetric(string) workqueue.SettableGaugeMetric {
	return noopMetric{}
}

// NewRetriesMetric returns the retries counter of the queue called name.
func (queueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return queueRetries.WithLabelValues(name)
}

// noopMetric satisfies every workqueue metric interface and records nothing.
type noopMetric struct{}

func (noopMetric) Inc()            {}
func (noopMetric) Dec()            {}
func (noopMetric) Set(float64)     {}
func (noopMetric) Observe(float64) {}
