package ca

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
)

func TestStatusCollector(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	notAfter := metav1.NewTime(time.Unix(2000000000, 0))
	require.NoError(t, indexer.Add(&v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "ready"},
		Status: v1alpha1.CertificateAuthorityStatus{
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}},
			Root:       &v1alpha1.CACertificateStatus{NotAfter: notAfter},
			Issuing:    &v1alpha1.CACertificateStatus{NotAfter: metav1.NewTime(time.Unix(1900000000, 0))},
		},
	}))
	require.NoError(t, indexer.Add(&v1alpha1.CertificateAuthority{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "new"}}))
	c := newStatusCollector()
	c.use(listers.NewCertificateAuthorityLister(indexer))
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP clusterpki_certificateauthority_ready 1 when the CertificateAuthority's Ready condition is True, else 0.
# TYPE clusterpki_certificateauthority_ready gauge
clusterpki_certificateauthority_ready{name="new",namespace="a"} 0
clusterpki_certificateauthority_ready{name="ready",namespace="a"} 1
# HELP clusterpki_certificateauthority_root_not_after_timestamp_seconds When the CertificateAuthority's root CA expires, as a Unix time.
# TYPE clusterpki_certificateauthority_root_not_after_timestamp_seconds gauge
clusterpki_certificateauthority_root_not_after_timestamp_seconds{name="ready",namespace="a"} 2e+09
# HELP clusterpki_certificateauthority_issuing_not_after_timestamp_seconds When the CertificateAuthority's current issuing CA expires, as a Unix time.
# TYPE clusterpki_certificateauthority_issuing_not_after_timestamp_seconds gauge
clusterpki_certificateauthority_issuing_not_after_timestamp_seconds{name="ready",namespace="a"} 1.9e+09
`)))
}

func TestNewMetricsKeepsTheOperatorsMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	m.apiWrites.WithLabelValues("status").Inc()
	m.unmountsAbandoned.WithLabelValues("timeout").Inc()
	again, err := NewMetrics(reg)
	require.NoError(t, err)
	assert.Same(t, m.apiWrites, again.apiWrites, "a second controller in the process counts with the first")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP clusterpki_ca_operator_api_writes_total Writes the ca-operator made to the Kubernetes API, by kind (status, configmap, finalizer).
# TYPE clusterpki_ca_operator_api_writes_total counter
clusterpki_ca_operator_api_writes_total{kind="status"} 1
# HELP clusterpki_ca_operator_unmounts_abandoned_total CertificateAuthorities with deletionPolicy Delete released without unmounting their Vault mounts, by reason (timeout: Vault did not answer within --finalizer-timeout).
# TYPE clusterpki_ca_operator_unmounts_abandoned_total counter
clusterpki_ca_operator_unmounts_abandoned_total{reason="timeout"} 1
`), "clusterpki_ca_operator_api_writes_total", "clusterpki_ca_operator_unmounts_abandoned_total"))
}
