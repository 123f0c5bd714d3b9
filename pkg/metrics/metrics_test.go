package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterInReturnsTheExistingCollector(t *testing.T) {
	reg := NewRegistry()
	opts := prometheus.CounterOpts{Namespace: Namespace, Name: "things_total", Help: "Things."}

	first, err := RegisterIn(reg, prometheus.NewCounter(opts))
	require.NoError(t, err)
	second, err := RegisterIn(reg, prometheus.NewCounter(opts))
	require.NoError(t, err)
	assert.Same(t, first, second)

	_, err = RegisterIn(reg, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "things_total", Help: "Other."}))
	assert.Error(t, err)
}

func TestRegisterIntoLeavesTheRegisteredCollector(t *testing.T) {
	reg := NewRegistry()
	opts := prometheus.CounterOpts{Namespace: Namespace, Name: "things_total", Help: "Things."}
	first, second := prometheus.NewCounter(opts), prometheus.NewCounter(opts)
	require.NoError(t, RegisterInto(reg, &first))
	require.NoError(t, RegisterInto(reg, &second))
	assert.Same(t, first, second)
}

func TestNewRegistryHasRuntimeCollectors(t *testing.T) {
	families, err := NewRegistry().Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	assert.True(t, names["go_goroutines"])
}
