// Package caoperator wires the CertificateAuthority controller to its clients, informers, event
// recorder and metrics, so the ca-operator command (through pkg/operator) and the integration
// tests run the very same thing.
package caoperator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/ca-operator/internal/ca"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Component names the ca-operator in events.
const Component = "ca-operator"

// RotationFloor is the shortest time between two rotations of a CA's issuing CA (see
// ca.RotationFloor).
const RotationFloor = ca.RotationFloor

// VaultClient is the part of the shared Vault client the ca-operator uses (ca.VaultClient), for
// callers that wrap it.
type VaultClient = ca.VaultClient

// Config is what New needs.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Vault provisions the CAs.
	Vault VaultClient
	// Recorder records events about CertificateAuthorities (required).
	Recorder record.EventRecorder
	// MountPrefix is the Vault path under which the CAs' mounts live (default pkipath.DefaultPrefix).
	MountPrefix string
	// VaultPublicAddr is written into AIA and CRL URLs (required).
	VaultPublicAddr string
	// Namespace limits the operator to one namespace; empty means all.
	Namespace string
	// Resync re-syncs every CA this often so drift in Vault is repaired (default 10 minutes).
	Resync time.Duration
	// FinalizerTimeout is how long after a CA's deletion the unmounting its deletionPolicy asks
	// for is retried before the finalizer is released with a Warning (default 5 minutes).
	FinalizerTimeout time.Duration
	// Registry receives the metrics (default pkg/metrics.Registry).
	Registry prometheus.Registerer
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
}

// Operator is the ca-operator's controller and the informers it reads from.
type Operator struct {
	informers  ca.Informers
	controller *ca.Controller
}

// New builds the operator; Run starts it.
func New(cfg Config) (*Operator, error) {
	if cfg.Vault == nil || cfg.RESTConfig == nil || cfg.Recorder == nil {
		return nil, errors.New("caoperator: RESTConfig, Vault and Recorder are required")
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	kubeClient, err := kubernetes.NewForConfig(kube.Protobuf(cfg.RESTConfig))
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	client, err := clientset.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("create clusterpki client: %w", err)
	}
	metrics, err := ca.NewMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	informers := ca.NewInformers(kubeClient, client, cfg.Namespace, cfg.Resync)
	ctrl, err := ca.NewController(ca.Config{
		Log:              cfg.Log,
		Kube:             kubeClient,
		Client:           client,
		Vault:            cfg.Vault,
		Recorder:         cfg.Recorder,
		Informers:        informers,
		Metrics:          metrics,
		MountPrefix:      cfg.MountPrefix,
		VaultPublicAddr:  cfg.VaultPublicAddr,
		FinalizerTimeout: cfg.FinalizerTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("caoperator: %w", err)
	}
	return &Operator{informers: informers, controller: ctrl}, nil
}

// Run starts the informers and runs the CertificateAuthority controller with workers workers
// until ctx is done; an Operator runs once.
func (o *Operator) Run(ctx context.Context, workers int) error {
	o.informers.Start(ctx)
	defer o.informers.Shutdown()
	return o.controller.Run(ctx, workers)
}

// Ready returns nil once the caches have synced and the workers run.
func (o *Operator) Ready() error { return o.controller.Ready() }
