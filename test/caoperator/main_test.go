// Package caoperator tests the ca-operator against a real kube-apiserver and Vault, with a
// Vault token that holds only the shipped ca-operator policy.
package caoperator

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/sirupsen/logrus"

	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/ca-operator/caoperator"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/vault"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var (
	env       *testenv.Env
	client    clientset.Interface
	rootVault *vaultapi.Client // root token: for assertions and out-of-band changes only
	opToken   string           // token with only the ca-operator policy
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.InstallShippedCRDs(ctx); err != nil {
			return err
		}
		var err error
		if client, err = clientset.NewForConfig(e.RESTConfig); err != nil {
			return err
		}
		cfg := vaultapi.DefaultConfig()
		cfg.Address = e.VaultAddr
		if rootVault, err = vaultapi.NewClient(cfg); err != nil {
			return err
		}
		rootVault.SetToken(e.VaultRootToken)
		if err := e.WriteOperatorPolicy(ctx, "ca-operator"); err != nil {
			return err
		}
		opToken, err = e.PolicyToken(ctx, "ca-operator", "24h")
		return err
	}))
}

func ptr[T any](v T) *T { return &v }

// operator is a running ca-operator.
type operator struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startOperator runs the ca-operator in-process, as the command does, with a Vault token
// holding only its policy. It stops when the test ends.
func startOperator(t *testing.T, token string) *operator {
	t.Helper()
	return startOperatorWith(t, token, nil)
}

// startOperatorWith is startOperator with tune (when not nil) applied to the operator's Config.
func startOperatorWith(t *testing.T, token string, tune func(*caoperator.Config)) *operator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := logrus.New()
	log.SetLevel(logrus.InfoLevel)
	log.SetOutput(testWriter{t})
	vc, err := vault.New(ctx, vault.Config{Addr: env.VaultAddr, Auth: "token", Token: token, Timeout: 10 * time.Second}, log)
	if err != nil {
		cancel()
		t.Fatalf("vault client: %v", err)
	}
	go vc.Start(ctx)
	recorder, stopEvents := kube.NewEventRecorder(env.KubeClient, clusterpkischeme.Scheme, caoperator.Component)
	cfg := caoperator.Config{
		RESTConfig:      env.RESTConfig,
		Vault:           vc,
		Recorder:        recorder,
		VaultPublicAddr: env.VaultAddr,
		Resync:          3 * time.Second,
		Log:             log,
	}
	if tune != nil {
		tune(&cfg)
	}
	ca, err := caoperator.New(cfg)
	if err != nil {
		cancel()
		stopEvents()
		t.Fatalf("ca-operator: %v", err)
	}
	op := &operator{cancel: cancel, done: make(chan error, 1)}
	go func() {
		defer stopEvents()
		op.done <- ca.Run(ctx, 4)
	}()
	t.Cleanup(op.stop)
	return op
}

// stop stops the operator and waits for it.
func (o *operator) stop() {
	o.once.Do(func() {
		o.cancel()
		select {
		case <-o.done:
		case <-time.After(30 * time.Second):
		}
	})
}

// testWriter sends operator logs to the test log so a failure shows them.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended must not panic
	w.t.Log(string(p))
	return len(p), nil
}
