package vault

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// Metrics are the Vault client's Prometheus metrics: every request it sends, by the caller's
// operation name, and every login. They are the one count of an operator's Vault requests.
type Metrics struct {
	requestDuration *prometheus.HistogramVec
	requests        *prometheus.CounterVec
	logins          *prometheus.CounterVec
}

// NewMetrics returns the metrics registered in reg; where reg already holds them (another
// client of the same process) they are shared, so the process counts its requests once.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "vault", Name: "request_duration_seconds",
			Help:    "Time Vault requests took including retries, by the caller's operation name and method (read, write, list, delete, login).",
			Buckets: metrics.DurationBuckets,
		}, []string{"operation", "method"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "vault", Name: "requests_total",
			Help: "Vault requests by the caller's operation name and result code (HTTP status, 2xx, or error when Vault gave no answer).",
		}, []string{"operation", "code"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "vault", Name: "logins_total",
			Help: "Vault logins by auth method and result (success, failure).",
		}, []string{"method", "result"}),
	}
	if err := errors.Join(
		metrics.RegisterInto(reg, &m.requestDuration),
		metrics.RegisterInto(reg, &m.requests),
		metrics.RegisterInto(reg, &m.logins),
	); err != nil {
		return nil, err
	}
	return m, nil
}

// codeLabel returns the requests_total code label for err.
func codeLabel(err error) string {
	if err == nil {
		return "2xx"
	}
	if code := statusCode(err); code != 0 {
		return strconv.Itoa(code)
	}
	return "error"
}
