package vault

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

var (
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace,
		Subsystem: "vault",
		Name:      "request_duration_seconds",
		Help:      "Time Vault requests took including retries, by the caller's operation name and method (read, write, list, delete, login).",
		Buckets:   metrics.DurationBuckets,
	}, []string{"operation", "method"})

	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "vault",
		Name:      "requests_total",
		Help:      "Vault requests by the caller's operation name and result code (HTTP status, 2xx, or error when Vault gave no answer).",
	}, []string{"operation", "code"})

	loginsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "vault",
		Name:      "logins_total",
		Help:      "Vault logins by auth method and result (success, failure).",
	}, []string{"method", "result"})
)

func init() {
	// Constant definitions: registering them fails only through a programming error.
	metrics.Registry.MustRegister(requestDuration, requestsTotal, loginsTotal)
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
