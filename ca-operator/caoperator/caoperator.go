// Package caoperator wires the CertificateAuthority controller to its clients, informers and
// event recorder, so the ca-operator command and the integration tests run the same thing.
package caoperator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	informers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
	"github.com/clusterpki/clusterpki/ca-operator/internal/ca"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// Component names the ca-operator in events.
const Component = "ca-operator"

// RotationFloor is the shortest time between two rotations of a CA's issuing CA (see
// ca.RotationFloor).
const RotationFloor = ca.RotationFloor

// Config is what New needs.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Vault provisions the CAs.
	Vault ca.VaultClient
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
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
}

// Operator is the ca-operator's controllers and informers.
type Operator struct {
	ctrl          *ca.Controller
	caInformers   informers.SharedInformerFactory
	kubeInformers kubeinformers.SharedInformerFactory
}

// New builds the ca-operator from cfg.
func New(cfg Config) (*Operator, error) {
	if cfg.Vault == nil || cfg.RESTConfig == nil || cfg.Recorder == nil {
		return nil, errors.New("caoperator: RESTConfig, Vault and Recorder are required")
	}
	if cfg.VaultPublicAddr == "" {
		return nil, errors.New("caoperator: VaultPublicAddr is required")
	}
	if cfg.MountPrefix == "" {
		cfg.MountPrefix = pkipath.DefaultPrefix
	}
	if err := pkipath.ValidatePrefix(cfg.MountPrefix); err != nil {
		return nil, fmt.Errorf("caoperator: %w", err)
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	kubeClient, err := kubernetes.NewForConfig(kube.Protobuf(cfg.RESTConfig))
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := clientset.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("clusterpki client: %w", err)
	}
	o := &Operator{}
	o.caInformers = informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync, informers.WithNamespace(cfg.Namespace))
	// Only the ConfigMaps we publish are cached, so memory does not grow with the cluster's others.
	selector := ca.ConfigMapSelector().String()
	o.kubeInformers = kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, 0,
		kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))

	o.ctrl, err = ca.New(ca.Config{MountPrefix: cfg.MountPrefix, VaultPublicAddr: cfg.VaultPublicAddr, ResyncPeriod: cfg.Resync,
		FinalizerTimeout: cfg.FinalizerTimeout},
		cfg.Log, kubeClient, client, cfg.Vault, cfg.Recorder, o.caInformers, o.kubeInformers)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Run starts the informers and the controller and blocks until ctx is done.
func (o *Operator) Run(ctx context.Context, workers int) error {
	o.caInformers.Start(ctx.Done())
	o.kubeInformers.Start(ctx.Done())
	defer o.caInformers.Shutdown()
	defer o.kubeInformers.Shutdown()
	return o.ctrl.Run(ctx, workers)
}

// Ready reports whether the caches have synced and the workers run.
func (o *Operator) Ready() error { return o.ctrl.Ready() }
