// Package metrics holds the Prometheus registry both operators register their metrics in, and
// which the HTTP server exposes on /metrics.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every clusterpki metric name.
const Namespace = "clusterpki"

// Registry is the process's private registry, holding Go runtime and process collectors and
// every clusterpki metric; it is deliberately not prometheus.DefaultRegisterer, so libraries
// cannot add metrics we did not choose.
var Registry = NewRegistry()

// NewRegistry returns a registry with the Go runtime and process collectors already registered.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// RegisterIn adds c to reg, returning the collector registered before under the same
// description when there is one.
func RegisterIn[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		var zero T
		return zero, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

// RegisterInto registers *c in reg as RegisterIn does and leaves in *c the collector reg holds,
// so a constructor can register each field of its metrics struct in one line.
func RegisterInto[T prometheus.Collector](reg prometheus.Registerer, c *T) error {
	registered, err := RegisterIn(reg, *c)
	if err != nil {
		return err
	}
	*c = registered
	return nil
}

// DurationBuckets are histogram buckets in seconds for work that takes from a millisecond
// (a cache read) to about a minute (a slow Vault call behind retries).
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
