// Package certoperator wires the Certificate controller to its clients, informers, event
// recorder and metrics, so the cert-operator command (through pkg/operator) and the integration
// tests run the very same thing.
package certoperator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/cert-operator/internal/certificate"
	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Component names the cert-operator in events.
const Component = "cert-operator"

// ReissueFloor is the shortest time between two issuances for one Certificate whose spec and
// renew annotation did not change (see renewal.ReissueFloor).
const ReissueFloor = renewal.ReissueFloor

// DefaultWorkers is the cert-operator's default --workers: Certificates synced at once. A
// sync that issues spends most of its time waiting for Vault and the API server, so the
// number is what keeps both busy on a burst of new Certificates (measured with make bench,
// issue 12), not what keeps this process's CPU busy.
const DefaultWorkers = 32

// DefaultRotationReissueInterval is the cert-operator's default --rotation-reissue-interval:
// the time between two re-issues onto a CA's new root during a root rotation.
const DefaultRotationReissueInterval = certificate.DefaultRotationReissueInterval

// Vault is the Vault client the operator signs and revokes with (pkg/vault.Client): one write
// per request, labelled with op ("sign", "revoke") for its metrics.
type Vault = certificate.Vault

// Config is what New needs.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Vault signs and revokes.
	Vault Vault
	// Recorder records events on Certificates; its scheme must know them (see Scheme).
	Recorder record.EventRecorder
	// Namespace limits the operator to one namespace; empty means all.
	Namespace string
	// Resync is the informers' resync period (default 10 hours).
	Resync time.Duration
	// MaxBackoff caps the delay between retries of a failing issuance (default 5 minutes).
	MaxBackoff time.Duration
	// FinalizerTimeout is how long after a Certificate's deletion its revocation is retried
	// before the finalizer is released with a Warning (default 5 minutes).
	FinalizerTimeout time.Duration
	// MountPrefix is the Vault path under which every CA's mounts live (default
	// pkipath.DefaultPrefix); it must match the prefix the ca-operator uses.
	MountPrefix string
	// RotationReissueInterval is the time between two re-issues onto a CA's new root while its
	// root rotation runs, across all CAs (0: no bound; the command's flag defaults to
	// DefaultRotationReissueInterval).
	RotationReissueInterval time.Duration
	// Registry receives the metrics (default pkg/metrics.Registry).
	Registry prometheus.Registerer
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
}

// Operator is the cert-operator's controllers and the informers they read from.
type Operator struct {
	informers  certificate.Informers
	controller *certificate.Controller
}

// New builds the operator; Run starts it.
func New(cfg Config) (*Operator, error) {
	if cfg.Vault == nil || cfg.RESTConfig == nil || cfg.Recorder == nil {
		return nil, errors.New("certoperator: RESTConfig, Vault and Recorder are required")
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	kubeClient, err := kube.NewClient(cfg.RESTConfig)
	if err != nil {
		return nil, err
	}
	client, err := versioned.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("create clusterpki client: %w", err)
	}
	metrics, err := certificate.NewMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	informers := certificate.NewInformers(kubeClient, client, cfg.Namespace, cfg.Resync)
	ctrl, err := certificate.NewController(certificate.Config{
		Kube:             kubeClient,
		Client:           client,
		Vault:            cfg.Vault,
		Informers:        informers,
		Recorder:         cfg.Recorder,
		Metrics:          metrics,
		Log:              cfg.Log,
		MaxBackoff:       cfg.MaxBackoff,
		FinalizerTimeout: cfg.FinalizerTimeout,
		MountPrefix:      cfg.MountPrefix,

		RotationReissueInterval: cfg.RotationReissueInterval,
	})
	if err != nil {
		return nil, err
	}
	return &Operator{informers: informers, controller: ctrl}, nil
}

// Run starts the informers and runs the Certificate controller with workers workers until ctx
// is done; an Operator runs once.
func (o *Operator) Run(ctx context.Context, workers int) error {
	o.informers.Start(ctx)
	defer o.informers.Shutdown()
	return o.controller.Run(ctx, workers)
}

// Ready returns nil once the caches have synced and the workers run, and otherwise says what
// is not ready.
func (o *Operator) Ready() error { return o.controller.Ready() }
