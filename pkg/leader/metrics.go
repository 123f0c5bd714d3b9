package leader

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// Metrics are leader election's Prometheus metrics.
type Metrics struct {
	// isLeader is 1 while this replica runs the controllers (it holds the Lease, or election
	// is off), else 0; alerts sum it over replicas to find an operator that nobody leads.
	isLeader *prometheus.GaugeVec
}

// NewMetrics returns the metrics registered in reg (shared with any registered before).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{isLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Subsystem: "leader", Name: "is_leader",
		Help: "1 while this replica runs the controllers (holds the Lease, or leader election is off), else 0, by Lease name.",
	}, []string{"lease"})}
	if err := metrics.RegisterInto(reg, &m.isLeader); err != nil {
		return nil, err
	}
	return m, nil
}

// defaultMetrics are the metrics of a Config without Metrics, in the process's registry that
// /metrics serves.
var defaultMetrics = sync.OnceValues(func() (*Metrics, error) { return NewMetrics(metrics.Registry) })
