package ca

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// statusCollector reports each cached CertificateAuthority's Ready condition and the expiry of
// its root and issuing CA, read from the informer's cache at scrape time: the status is the
// one record of both, so no gauge has to be kept in step with it by hand.
type statusCollector struct {
	lister         atomic.Pointer[listers.CertificateAuthorityLister]
	ready          *prometheus.Desc
	rootNotAfter   *prometheus.Desc
	issuerNotAfter *prometheus.Desc
}

// statusMetrics is the process's collector; the Controller built last supplies its cache.
var statusMetrics = &statusCollector{
	ready: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_ready",
		"1 when the CertificateAuthority's Ready condition is True, else 0.", []string{"namespace", "name"}, nil),
	rootNotAfter: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_root_not_after_timestamp_seconds",
		"When the CertificateAuthority's root CA expires, as a Unix time.", []string{"namespace", "name"}, nil),
	issuerNotAfter: prometheus.NewDesc(metrics.Namespace+"_certificateauthority_issuing_not_after_timestamp_seconds",
		"When the CertificateAuthority's current issuing CA expires, as a Unix time.", []string{"namespace", "name"}, nil),
}

func init() {
	// A constant definition: registering it fails only through a programming error.
	metrics.Registry.MustRegister(statusMetrics)
}

// use makes the collector read from lister.
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
		for _, c := range ca.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && c.Status == metav1.ConditionTrue {
				ready = 1
			}
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
