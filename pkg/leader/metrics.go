package leader

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// isLeader is 1 while this replica runs the controllers (it holds the Lease, or election is
// off), else 0; alerts sum it over replicas to find an operator that nobody leads.
var isLeader = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: metrics.Namespace,
	Subsystem: "leader",
	Name:      "is_leader",
	Help:      "1 while this replica runs the controllers (holds the Lease, or leader election is off), else 0, by Lease name.",
}, []string{"lease"})

func init() {
	// A constant definition: registering it fails only through a programming error.
	metrics.Registry.MustRegister(isLeader)
}
