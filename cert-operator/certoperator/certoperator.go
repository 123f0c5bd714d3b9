// Package certoperator wires the Certificate controller to its clients, informers, event
// recorder and metrics, so the cert-operator command and the integration tests run the very
// same thing.
package certoperator

import (
	"context"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/cert-operator/internal/certificate"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Component names the cert-operator in events.
const Component = "cert-operator"

// Vault is the Vault client the operator signs and revokes with: one write per request,
// labelled with op ("sign", "revoke") for its metrics.
type Vault interface {
	Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error)
}

// Config is what Run needs.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Vault signs and revokes.
	Vault Vault
	// Namespace limits the operator to one namespace; empty means all.
	Namespace string
	// Workers is the number of Certificates synced in parallel (default 4).
	Workers int
	// Resync is the informers' resync period (default 10 hours).
	Resync time.Duration
	// MaxBackoff caps the delay between retries of a failing issuance (default 5 minutes).
	MaxBackoff time.Duration
	// Registry receives the metrics (default pkg/metrics.Registry).
	Registry prometheus.Registerer
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
	// OnReady, when set, is called with a function reporting whether the controller's caches
	// have synced and its workers run, for a readiness probe.
	OnReady func(ready func() bool)
}

// Run runs the Certificate controller until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Vault == nil || cfg.RESTConfig == nil {
		return errors.New("certoperator: RESTConfig and Vault are required")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	kubeClient, err := kubernetes.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := versioned.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return fmt.Errorf("clusterpki client: %w", err)
	}
	metrics, err := certificate.NewMetrics(cfg.Registry)
	if err != nil {
		return err
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	recorder, stopEvents := kube.NewEventRecorder(kubeClient, scheme, Component)
	defer stopEvents()

	informers := certificate.NewInformers(kubeClient, client, cfg.Namespace, cfg.Resync)
	ctrl, err := certificate.NewController(certificate.Config{
		KubeClient: kubeClient,
		Client:     client,
		Vault:      cfg.Vault,
		Informers:  informers,
		Recorder:   recorder,
		Metrics:    metrics,
		Log:        cfg.Log,
		MaxBackoff: cfg.MaxBackoff,
	})
	if err != nil {
		return err
	}
	if cfg.OnReady != nil {
		cfg.OnReady(ctrl.Ready)
	}
	informers.Start(ctx)
	defer informers.Shutdown()
	return ctrl.Run(ctx, cfg.Workers)
}

// Scheme returns a scheme knowing the core kinds and the clusterpki kinds, for events.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := kubescheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add core kinds to scheme: %w", err)
	}
	if err := clusterpkischeme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add clusterpki kinds to scheme: %w", err)
	}
	return s, nil
}
