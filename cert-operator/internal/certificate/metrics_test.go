package certificate

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
)

// The per-Certificate series come from the cached status at scrape time: Ready always, expiry
// and renewal time once the status has them, nothing for a Certificate that is gone.
func TestStatusCollector(t *testing.T) {
	notAfter, renewal := metav1.NewTime(time.Unix(2000, 0)), metav1.NewTime(time.Unix(1500, 0))
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	require.NoError(t, indexer.Add(certificate(func(c *v1alpha1.Certificate) {
		c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "True"}}
		c.Status.NotAfter, c.Status.RenewalTime = &notAfter, &renewal
	})))
	require.NoError(t, indexer.Add(certificate(func(c *v1alpha1.Certificate) { c.Name = "new" })))

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	m.certificates.use(listers.NewCertificateLister(indexer))

	want := `
# HELP clusterpki_certificate_not_after_timestamp_seconds When the certificate in each Certificate's Secret expires, as a Unix time.
# TYPE clusterpki_certificate_not_after_timestamp_seconds gauge
clusterpki_certificate_not_after_timestamp_seconds{name="web",namespace="team-a"} 2000
# HELP clusterpki_certificate_ready 1 when the Certificate's Ready condition is True, else 0.
# TYPE clusterpki_certificate_ready gauge
clusterpki_certificate_ready{name="new",namespace="team-a"} 0
clusterpki_certificate_ready{name="web",namespace="team-a"} 1
# HELP clusterpki_certificate_renewal_timestamp_seconds When each Certificate is due for renewal, as a Unix time.
# TYPE clusterpki_certificate_renewal_timestamp_seconds gauge
clusterpki_certificate_renewal_timestamp_seconds{name="web",namespace="team-a"} 1500
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"clusterpki_certificate_not_after_timestamp_seconds", "clusterpki_certificate_ready", "clusterpki_certificate_renewal_timestamp_seconds"))

	require.NoError(t, indexer.Delete(certificate()))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP clusterpki_certificate_ready 1 when the Certificate's Ready condition is True, else 0.
# TYPE clusterpki_certificate_ready gauge
clusterpki_certificate_ready{name="new",namespace="team-a"} 0
`), "clusterpki_certificate_not_after_timestamp_seconds", "clusterpki_certificate_ready", "clusterpki_certificate_renewal_timestamp_seconds"))
}
