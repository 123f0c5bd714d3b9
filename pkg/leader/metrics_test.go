package leader

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsLeaderWhileRunWithoutElection(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	var during float64
	require.NoError(t, Run(context.Background(), Config{Name: "gauge-test", Metrics: m}, func(context.Context) {
		during = testutil.ToFloat64(m.isLeader.WithLabelValues("gauge-test"))
	}))
	assert.Equal(t, 1.0, during, "a replica without election runs the controllers: it leads")
	assert.Equal(t, 0.0, testutil.ToFloat64(m.isLeader.WithLabelValues("gauge-test")), "after run returns it no longer does")
}
