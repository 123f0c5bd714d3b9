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
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	informers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
	"github.com/clusterpki/clusterpki/ca-operator/internal/ca"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Component names the ca-operator in events.
const Component = "ca-operator"

// Config is what Run needs.
type Config struct {
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// Vault provisions the CAs.
	Vault ca.VaultClient
	// MountPrefix is prepended to cluster IDs to name mounts (default "pki-").
	MountPrefix string
	// VaultPublicAddr is written into AIA and CRL URLs (required).
	VaultPublicAddr string
	// Namespace limits the operator to one namespace; empty means all.
	Namespace string
	// Workers is the number of CAs synced in parallel (default 4).
	Workers int
	// Resync re-syncs every CA this often so drift in Vault is repaired (default 10 minutes).
	Resync time.Duration
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
	// OnReady, when set, receives a readiness check of the controller.
	OnReady func(ready func() error)
}

// Run runs the CertificateAuthority controller until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Vault == nil || cfg.RESTConfig == nil {
		return errors.New("caoperator: RESTConfig and Vault are required")
	}
	if cfg.MountPrefix == "" {
		cfg.MountPrefix = "pki-"
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	kubeClient, err := kubernetes.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	client, err := clientset.NewForConfig(cfg.RESTConfig)
	if err != nil {
		return fmt.Errorf("clusterpki client: %w", err)
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	recorder, stopEvents := kube.NewEventRecorder(kubeClient, scheme, Component)
	defer stopEvents()

	caInformers := informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync, informers.WithNamespace(cfg.Namespace))
	// Only the ConfigMaps we publish are cached, so memory does not grow with the cluster's others.
	selector := ca.ConfigMapSelector().String()
	kubeInformers := kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, 0,
		kubeinformers.WithNamespace(cfg.Namespace),
		kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))

	ctrl, err := ca.New(ca.Config{MountPrefix: cfg.MountPrefix, VaultPublicAddr: cfg.VaultPublicAddr, ResyncPeriod: cfg.Resync},
		cfg.Log, kubeClient, client, cfg.Vault, recorder, caInformers, kubeInformers)
	if err != nil {
		return err
	}
	if cfg.OnReady != nil {
		cfg.OnReady(ctrl.Ready)
	}
	caInformers.Start(ctx.Done())
	kubeInformers.Start(ctx.Done())
	defer caInformers.Shutdown()
	defer kubeInformers.Shutdown()
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
