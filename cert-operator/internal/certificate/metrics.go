package certificate

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/metrics"
)

const subsystem = "certificate"

// Metrics are the cert-operator's Prometheus metrics.
type Metrics struct {
	// certificates reports each Certificate's expiry, renewal time and readiness from the
	// cache at scrape time.
	certificates     *statusCollector
	issuanceDuration *prometheus.HistogramVec
	syncErrors       *prometheus.CounterVec
	issuances        *prometheus.CounterVec
	apiWrites        *prometheus.CounterVec
	revocations      *prometheus.CounterVec
	reissuesDeferred prometheus.Counter
	// rotationReissues counts re-issues onto a CA's new root done under the rotation bound.
	rotationReissues prometheus.Counter
	// abandoned counts revocations left undone at deletion, by reason (timeout, skipped).
	abandoned *prometheus.CounterVec
	// queue are the controller loop's metrics (pkg/controller), in the same registry.
	queue *controller.Metrics
}

// NewMetrics returns the metrics, registered in reg (metrics.Registry when nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = metrics.Registry
	}
	m := &Metrics{
		certificates: newStatusCollector(),
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
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: subsystem, Name: "revocations_abandoned_total",
			Help: "Certificates left unrevoked when their Certificate was deleted, by reason (timeout: Vault did not answer within --finalizer-timeout; skipped: the clusterpki.dev/skip-revocation annotation).",
		}, []string{"reason"}),
	}
	m.reissuesDeferred = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: subsystem, Name: "reissues_deferred_total",
		Help: "Re-issues held back by the floor of one issuance per Certificate a minute (a spec or role that asks for more).",
	})
	m.rotationReissues = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "rotation_reissues_total",
		Help: "Certificates re-issued onto their CA's new root during a root rotation, spaced by --rotation-reissue-interval.",
	})
	var err error
	if m.queue, err = controller.NewMetrics(reg); err != nil {
		return nil, err
	}
	if err := errors.Join(
		metrics.RegisterInto(reg, &m.certificates),
		metrics.RegisterInto(reg, &m.issuanceDuration),
		metrics.RegisterInto(reg, &m.syncErrors),
		metrics.RegisterInto(reg, &m.issuances),
		metrics.RegisterInto(reg, &m.apiWrites),
		metrics.RegisterInto(reg, &m.revocations),
		metrics.RegisterInto(reg, &m.reissuesDeferred),
		metrics.RegisterInto(reg, &m.rotationReissues),
		metrics.RegisterInto(reg, &m.abandoned),
	); err != nil {
		return nil, err
	}
	return m, nil
}

// statusCollector reports, for each cached Certificate, when its certificate expires, when it
// is due for renewal and whether it is Ready, read from the informer's cache at scrape time
// (as the ca-operator does for CertificateAuthorities): the status is the one record of all
// three, so no series is kept in memory, in step with it by hand, between scrapes.
type statusCollector struct {
	lister      atomic.Pointer[listers.CertificateLister]
	notAfter    *prometheus.Desc
	renewalTime *prometheus.Desc
	ready       *prometheus.Desc
}

func newStatusCollector() *statusCollector {
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, subsystem, n) }
	return &statusCollector{
		notAfter: prometheus.NewDesc(name("not_after_timestamp_seconds"),
			"When the certificate in each Certificate's Secret expires, as a Unix time.", []string{"namespace", "name"}, nil),
		renewalTime: prometheus.NewDesc(name("renewal_timestamp_seconds"),
			"When each Certificate is due for renewal, as a Unix time.", []string{"namespace", "name"}, nil),
		ready: prometheus.NewDesc(name("ready"),
			"1 when the Certificate's Ready condition is True, else 0.", []string{"namespace", "name"}, nil),
	}
}

// use makes the collector read from lister.
func (s *statusCollector) use(lister listers.CertificateLister) { s.lister.Store(&lister) }

// Describe sends the descriptors of the three series.
func (s *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.notAfter
	ch <- s.renewalTime
	ch <- s.ready
}

// Collect sends the series of every cached Certificate: Ready always, expiry and renewal time
// once the status records them.
func (s *statusCollector) Collect(ch chan<- prometheus.Metric) {
	l := s.lister.Load()
	if l == nil {
		return
	}
	certs, err := (*l).List(labels.Everything())
	if err != nil {
		return
	}
	for _, c := range certs {
		ready := 0.0
		if conditions.IsTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(s.ready, prometheus.GaugeValue, ready, c.Namespace, c.Name)
		if t := c.Status.NotAfter; t != nil {
			ch <- prometheus.MustNewConstMetric(s.notAfter, prometheus.GaugeValue, float64(t.Unix()), c.Namespace, c.Name)
		}
		if t := c.Status.RenewalTime; t != nil {
			ch <- prometheus.MustNewConstMetric(s.renewalTime, prometheus.GaugeValue, float64(t.Unix()), c.Namespace, c.Name)
		}
	}
}
