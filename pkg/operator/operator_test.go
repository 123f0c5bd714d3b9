package operator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/pkg/cli"
)

// fakeRunnable runs until its context ends.
type fakeRunnable struct{ started chan struct{} }

func (f *fakeRunnable) Run(ctx context.Context, _ int) error {
	close(f.started)
	<-ctx.Done()
	return nil
}

func (f *fakeRunnable) Ready() error { return nil }

// testOptions points at a fake Vault that accepts one token and an API server that is never
// called (leader election is off).
func testOptions(t *testing.T) *cli.Options {
	t.Helper()
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/auth/token/lookup-self" || r.Header.Get("X-Vault-Token") != "root" {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, `{"data":{"ttl":0,"renewable":false}}`)
	}))
	t.Cleanup(vault.Close)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))

	opts := cli.NewOptions()
	opts.Kubeconfig = kubeconfig
	opts.LeaderElect = false
	opts.MetricsAddr = "0"
	opts.Vault.Addr = vault.URL
	opts.Vault.Auth = "token"
	opts.Vault.Token = "root"
	return opts
}

func quietLogger() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

func TestRunCallsSetupAndStopsOnCancel(t *testing.T) {
	opts := testOptions(t)
	r := &fakeRunnable{started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, quietLogger(), opts, "ca-operator", func(_ context.Context, deps Deps) (Runnable, error) {
			assert.NotNil(t, deps.Kube)
			assert.NoError(t, deps.Vault.TokenValid())
			return r, nil
		})
	}()
	<-r.started
	cancel()
	assert.NoError(t, <-done)
}

func TestRunReturnsSetupErrors(t *testing.T) {
	err := Run(context.Background(), quietLogger(), testOptions(t), "ca-operator", func(context.Context, Deps) (Runnable, error) {
		return nil, errors.New("no CRDs")
	})
	assert.EqualError(t, err, "set up controllers: no CRDs")
}
