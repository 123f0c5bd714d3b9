package leader

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// config returns an enabled Config with short periods against client.
func config(client *fake.Clientset) Config {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return Config{
		Enabled: true, Namespace: "clusterpki-system", Name: "ca-operator", Identity: "pod-a",
		Client: client, LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond,
		RetryPeriod: 100 * time.Millisecond, Log: log,
	}
}

func TestRunDisabledCallsRunDirectly(t *testing.T) {
	var called bool
	err := Run(context.Background(), Config{}, func(context.Context) { called = true })
	require.NoError(t, err)
	assert.True(t, called)
}

func TestRunReturnsNilWhenCancelled(t *testing.T) {
	client := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	err := Run(ctx, config(client), func(ctx context.Context) {
		cancel()
		<-ctx.Done()
	})
	assert.NoError(t, err)
}

func TestRunReturnsNilWhenRunReturnsByItself(t *testing.T) {
	err := Run(context.Background(), config(fake.NewClientset()), func(context.Context) {})
	assert.NoError(t, err)
}

func TestRunReportsLostLeadership(t *testing.T) {
	client := fake.NewClientset()
	var failRenewals atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failRenewals.Load() {
			return true, nil, errors.New("etcd is gone")
		}
		return false, nil, nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, config(client), func(ctx context.Context) {
		failRenewals.Store(true)
		<-ctx.Done()
	})
	assert.ErrorIs(t, err, ErrLeadershipLost)
	assert.NoError(t, ctx.Err(), "leadership loss must be noticed before the test's deadline")
}

func TestRunRefusesIncompleteConfig(t *testing.T) {
	err := Run(context.Background(), Config{Enabled: true}, func(context.Context) {})
	assert.EqualError(t, err, "leader election: no Kubernetes client")
}
