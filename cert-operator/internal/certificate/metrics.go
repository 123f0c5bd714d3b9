package certificate

import (
	"context"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

const subsystem = "certificate"

// Metrics are the cert-operator's Prometheus metrics.
type Metrics struct {
	notAfter         *prometheus.GaugeVec
	renewalTime      *prometheus.GaugeVec
	ready            *prometheus.GaugeVec
	issuanceDuration *prometheus.HistogramVec
	syncErrors       *prometheus.CounterVec
	issuances        *prometheus.CounterVec
	apiWrites        *prometheus.CounterVec
	revocations      *prometheus.CounterVec
	vaultRequests    *prometheus.CounterVec
	reissuesDeferred prometheus.Counter
	// abandoned counts revocations left undone at deletion, by reason (timeout, skipped).
	abandoned *prometheus.CounterVec
}

// NewMetrics returns the metrics, registered in reg (metrics.Registry when nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = metrics.Registry
	}
	m := &Metrics{
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "not_after_timestamp_seconds",
			Help: "When the certificate in each Certificate's Secret expires, as a Unix time.",
		}, []string{"namespace", "name"}),
		renewalTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "renewal_timestamp_seconds",
			Help: "When each Certificate is due for renewal, as a Unix time.",
		}, []string{"namespace", "name"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "ready",
			Help: "1 when the Certificate's Ready condition is True, else 0.",
		}, []string{"namespace", "name"}),
		issuanceDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "issuance_duration_seconds",
			Help:    "Time from deciding to issue to the Secret being written (key generation, signing in Vault, writes), by result.",
			Buckets: metrics.DurationBuckets,
		}, []string{"result"}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "sync_errors_total",
			Help: "Certificate syncs that ended in a failure, by reason.",
		}, []string{"reason"}),
		issuances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "issuances_total",
			Help: "Certificates written to Secrets, by kind (issued: first certificate, renewed: any later one).",
		}, []string{"kind"}),
		apiWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "api_writes_total",
			Help: "Writes the cert-operator sent to the API server, by resource (secrets, status, finalizers) and verb.",
		}, []string{"resource", "verb"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "revocations_total",
			Help: "Certificates revoked in Vault, by trigger (reissue, delete) and result.",
		}, []string{"trigger", "result"}),
		vaultRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "vault_requests_total",
			Help: "Requests the cert-operator sent to Vault, by operation (sign, revoke) and result (success, error).",
		}, []string{"operation", "result"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "revocations_abandoned_total",
			Help: "Certificates left unrevoked when their Certificate was deleted, by reason (timeout: Vault did not answer within --finalizer-timeout; skipped: the clusterpki.dev/skip-revocation annotation).",
		}, []string{"reason"}),
	}
	m.reissuesDeferred = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: subsystem, Name: "reissues_deferred_total",
		Help: "Re-issues held back by the floor of one issuance per Certificate a minute (a spec or role that asks for more).",
	})
	var err error
	if m.notAfter, err = metrics.RegisterIn(reg, m.notAfter); err != nil {
		return nil, err
	}
	if m.renewalTime, err = metrics.RegisterIn(reg, m.renewalTime); err != nil {
		return nil, err
	}
	if m.ready, err = metrics.RegisterIn(reg, m.ready); err != nil {
		return nil, err
	}
	if m.issuanceDuration, err = metrics.RegisterIn(reg, m.issuanceDuration); err != nil {
		return nil, err
	}
	if m.syncErrors, err = metrics.RegisterIn(reg, m.syncErrors); err != nil {
		return nil, err
	}
	if m.issuances, err = metrics.RegisterIn(reg, m.issuances); err != nil {
		return nil, err
	}
	if m.apiWrites, err = metrics.RegisterIn(reg, m.apiWrites); err != nil {
		return nil, err
	}
	if m.revocations, err = metrics.RegisterIn(reg, m.revocations); err != nil {
		return nil, err
	}
	if m.vaultRequests, err = metrics.RegisterIn(reg, m.vaultRequests); err != nil {
		return nil, err
	}
	if m.reissuesDeferred, err = metrics.RegisterIn(reg, m.reissuesDeferred); err != nil {
		return nil, err
	}
	if m.abandoned, err = metrics.RegisterIn(reg, m.abandoned); err != nil {
		return nil, err
	}
	return m, nil
}

// observeCertificate records the expiry and renewal time of namespace/name.
func (m *Metrics) observeCertificate(namespace, name string, notAfter, renewal time.Time) {
	m.notAfter.WithLabelValues(namespace, name).Set(float64(notAfter.Unix()))
	m.renewalTime.WithLabelValues(namespace, name).Set(float64(renewal.Unix()))
}

// observeReady records whether namespace/name is Ready.
func (m *Metrics) observeReady(namespace, name string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(namespace, name).Set(v)
}

// forget drops the per-certificate series of a deleted Certificate.
func (m *Metrics) forget(namespace, name string) {
	m.notAfter.DeleteLabelValues(namespace, name)
	m.renewalTime.DeleteLabelValues(namespace, name)
	m.ready.DeleteLabelValues(namespace, name)
}

// countingVault counts every request sent through the Vault it wraps, whichever client the
// command line chose (the zero-churn benchmark reads the count).
type countingVault struct {
	Vault
	requests *prometheus.CounterVec
}

// countVault returns v counting its requests in m; v itself when m is nil.
func countVault(v Vault, m *Metrics) Vault {
	if m == nil || m.vaultRequests == nil || v == nil {
		return v
	}
	return countingVault{Vault: v, requests: m.vaultRequests}
}

// Write sends the request and counts it by op and result.
func (v countingVault) Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	s, err := v.Vault.Write(ctx, op, path, data)
	result := "success"
	if err != nil {
		result = "error"
	}
	v.requests.WithLabelValues(op, result).Inc()
	return s, err
}
