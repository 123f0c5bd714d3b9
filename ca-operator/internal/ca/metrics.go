package ca

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// subsystem prefixes the ca-operator's own counters (clusterpki_ca_operator_...).
const subsystem = "ca_operator"

// Metrics are the ca-operator's Prometheus metrics.
type Metrics struct {
	// cas reports each CertificateAuthority's readiness and CA expiries from the cache at
	// scrape time.
	cas *statusCollector
	// apiWrites counts the writes the ca-operator makes to the API server, by kind; with no
	// change anywhere it stays flat (the benchmark's zero-churn check reads it).
	apiWrites *prometheus.CounterVec
	// unmountsAbandoned counts deletions that left a CA's mounts in Vault although
	// deletionPolicy asked to remove them.
	unmountsAbandoned *prometheus.CounterVec
	// rootPhases counts the phases root rotations entered.
	rootPhases *prometheus.CounterVec
}

// NewMetrics returns the metrics, registered in reg (metrics.Registry when nil). Metrics
// registered in reg before are shared, so two controllers in one process count together.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = metrics.Registry
	}
	m := &Metrics{
		cas: newStatusCollector(),
		apiWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "api_writes_total",
			Help: "Writes the ca-operator made to the Kubernetes API, by kind (status, configmap, finalizer).",
		}, []string{"kind"}),
		unmountsAbandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "unmounts_abandoned_total",
			Help: "CertificateAuthorities with deletionPolicy Delete released without unmounting their Vault mounts, by reason (timeout: Vault did not answer within --finalizer-timeout).",
		}, []string{"reason"}),
		rootPhases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "root_rotation_phases_total",
			Help: "Phases root rotations entered (Preparing, Trusting, Moving, Overlap, Retiring, Completed), by phase.",
		}, []string{"phase"}),
	}
	var err error
	if m.cas, err = metrics.RegisterIn(reg, m.cas); err != nil {
		return nil, err
	}
	if m.apiWrites, err = metrics.RegisterIn(reg, m.apiWrites); err != nil {
		return nil, err
	}
	if m.unmountsAbandoned, err = metrics.RegisterIn(reg, m.unmountsAbandoned); err != nil {
		return nil, err
	}
	if m.rootPhases, err = metrics.RegisterIn(reg, m.rootPhases); err != nil {
		return nil, err
	}
	return m, nil
}

// statusCollector reports each cached CertificateAuthority's Ready condition and the expiry of
// its root and issuing CA, read from the informer's cache at scrape time: the status is the
// one record of both, so no gauge has to be kept in step with it by hand.
type statusCollector struct {
	lister         atomic.Pointer[listers.CertificateAuthorityLister]
	ready          *prometheus.Desc
	rootNotAfter   *prometheus.Desc
	issuerNotAfter *prometheus.Desc
}

// newStatusCollector returns a collector that reports nothing until use gives it a cache.
func newStatusCollector() *statusCollector {
	return &statusCollector{
		ready: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_ready",
			"1 when the CertificateAuthority's Ready condition is True, else 0.", []string{"namespace", "name"}, nil),
		rootNotAfter: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_root_not_after_timestamp_seconds",
			"When the CertificateAuthority's root CA expires, as a Unix time.", []string{"namespace", "name"}, nil),
		issuerNotAfter: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_issuing_not_after_timestamp_seconds",
			"When the CertificateAuthority's current issuing CA expires, as a Unix time.", []string{"namespace", "name"}, nil),
	}
}

// use makes the collector read from lister; of two controllers sharing one collector, the one
// built last supplies its cache.
func (s *statusCollector) use(lister listers.CertificateAuthorityLister) { s.lister.Store(&lister) }

// Describe sends the descriptors of the three series.
func (s *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.ready
	ch <- s.rootNotAfter
	ch <- s.issuerNotAfter
}

// Collect sends one sample of each series per cached CertificateAuthority.
func (s *statusCollector) Collect(ch chan<- prometheus.Metric) {
	l := s.lister.Load()
	if l == nil {
		return
	}
	cas, err := (*l).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ca := range cas {
		ready := 0.0
		if conditions.IsTrue(ca.Status.Conditions, v1alpha1.ConditionReady) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(s.ready, prometheus.GaugeValue, ready, ca.Namespace, ca.Name)
		if r := ca.Status.Root; r != nil && !r.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(s.rootNotAfter, prometheus.GaugeValue, float64(r.NotAfter.Unix()), ca.Namespace, ca.Name)
		}
		if i := ca.Status.Issuing; i != nil && !i.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(s.issuerNotAfter, prometheus.GaugeValue, float64(i.NotAfter.Unix()), ca.Namespace, ca.Name)
		}
	}
}
