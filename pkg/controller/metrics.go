package controller

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// Metrics are the controller loop's Prometheus metrics: sync durations and errors, and the work
// queue's depth, adds and retries, each labelled with the controller's name.
type Metrics struct {
	syncDuration *prometheus.HistogramVec
	syncErrors   *prometheus.CounterVec
	queueDepth   *prometheus.GaugeVec
	queueAdds    *prometheus.CounterVec
	queueRetries *prometheus.CounterVec
}

// NewMetrics returns the metrics registered in reg; where reg already holds them (another
// controller of the same process) they are shared, told apart by the controller label.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "controller", Name: "sync_duration_seconds",
			Help:    "Time one sync of one key took, by controller and result (success, requeue, error).",
			Buckets: metrics.DurationBuckets,
		}, []string{"controller", "result"}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "controller", Name: "sync_errors_total",
			Help: "Syncs that returned an error and were retried with backoff, by controller.",
		}, []string{"controller"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "controller", Name: "queue_depth",
			Help: "Keys waiting in the controller's work queue.",
		}, []string{"controller"}),
		queueAdds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "controller", Name: "queue_adds_total",
			Help: "Keys added to the controller's work queue.",
		}, []string{"controller"}),
		queueRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "controller", Name: "queue_retries_total",
			Help: "Keys re-added to the controller's work queue with backoff.",
		}, []string{"controller"}),
	}
	if err := errors.Join(
		metrics.RegisterInto(reg, &m.syncDuration),
		metrics.RegisterInto(reg, &m.syncErrors),
		metrics.RegisterInto(reg, &m.queueDepth),
		metrics.RegisterInto(reg, &m.queueAdds),
		metrics.RegisterInto(reg, &m.queueRetries),
	); err != nil {
		return nil, err
	}
	return m, nil
}

// defaultMetrics are the metrics of a controller built without WithMetrics, in the process's
// registry that /metrics serves.
var defaultMetrics = sync.OnceValues(func() (*Metrics, error) { return NewMetrics(metrics.Registry) })

// queueMetrics is a workqueue.MetricsProvider reporting depth, adds and retries into its
// Metrics; the latency metrics are left out because sync_duration_seconds covers them.
type queueMetrics struct{ m *Metrics }

var _ workqueue.MetricsProvider = queueMetrics{}

// NewDepthMetric returns the queue depth gauge of the queue called name.
func (q queueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return q.m.queueDepth.WithLabelValues(name)
}

// NewAddsMetric returns the adds counter of the queue called name.
func (q queueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return q.m.queueAdds.WithLabelValues(name)
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
func (q queueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return q.m.queueRetries.WithLabelValues(name)
}

// noopMetric satisfies every workqueue metric interface and records nothing.
type noopMetric struct{}

func (noopMetric) Inc()            {}
func (noopMetric) Dec()            {}
func (noopMetric) Set(float64)     {}
func (noopMetric) Observe(float64) {}
