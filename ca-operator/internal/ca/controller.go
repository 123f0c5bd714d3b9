// Package ca holds the CertificateAuthority controller: it converges Vault (a root mount and
// an issuing mount per cluster, their CAs and roles) and a ConfigMap with the root
// certificate to each CertificateAuthority's spec, and reports what it finds in status.
package ca

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	informers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// Name is the controller's name in logs, metrics and events.
const Name = "certificateauthority"

// Finalizer keeps a CertificateAuthority until its deletion policy has been carried out.
const Finalizer = "clusterpki.dev/certificate-authority"

// Config holds what NewController needs: the controller's dependencies and the settings that
// do not come from the spec.
type Config struct {
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
	// Kube writes the published ConfigMaps.
	Kube kubernetes.Interface
	// Client writes CertificateAuthority status and finalizers.
	Client clientset.Interface
	// Vault provisions the CAs.
	Vault VaultClient
	// Recorder records events about CertificateAuthorities.
	Recorder record.EventRecorder
	// Informers are the caches the controller reads from (NewInformers).
	Informers Informers
	// Metrics are the metrics the controller keeps (NewMetrics).
	Metrics *Metrics
	// MountPrefix is the Vault path under which every CA's mounts live (default
	// pkipath.DefaultPrefix).
	MountPrefix string
	// VaultPublicAddr is the Vault address written into certificates' AIA and CRL URLs.
	VaultPublicAddr string
	// FinalizerTimeout is how long after a CA's deletion the unmounting its deletionPolicy
	// asks for is retried before the finalizer is released with a Warning (default
	// kube.DefaultFinalizerTimeout).
	FinalizerTimeout time.Duration
}

// Controller converges CertificateAuthorities.
type Controller struct {
	log      logrus.FieldLogger
	kube     kubernetes.Interface
	client   clientset.Interface
	pki      *pki
	recorder record.EventRecorder
	metrics  *Metrics

	caLister    listers.CertificateAuthorityLister
	cmLister    corelisters.ConfigMapLister
	certIndexer cache.Indexer
	hasSynced   []cache.InformerSynced

	// stalls remembers, per CA whose root rotation waits for Certificates, since when its
	// counts have not moved (see noteProgress).
	stalls *stallTracker

	queue *controller.Controller

	// now is a field so tests can set the clock.
	now              func() time.Time
	mountPrefix      string
	vaultPublicAddr  string
	finalizerTimeout time.Duration
}

// NewController returns a controller reading from cfg.Informers, whose handlers it registers;
// start the informers after this call.
func NewController(cfg Config) (*Controller, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	caInformer := cfg.Informers.ClusterPKI.Clusterpki().V1alpha1().CertificateAuthorities()
	cmInformer := cfg.Informers.Kube.Core().V1().ConfigMaps()
	certInformer := cfg.Informers.Certificates.Clusterpki().V1alpha1().Certificates().Informer()
	c := &Controller{
		log:              cfg.Log,
		kube:             cfg.Kube,
		client:           cfg.Client,
		pki:              &pki{vault: cfg.Vault},
		recorder:         cfg.Recorder,
		metrics:          cfg.Metrics,
		caLister:         caInformer.Lister(),
		cmLister:         cmInformer.Lister(),
		certIndexer:      certInformer.GetIndexer(),
		hasSynced:        []cache.InformerSynced{caInformer.Informer().HasSynced, cmInformer.Informer().HasSynced, certInformer.HasSynced},
		stalls:           newStallTracker(),
		now:              time.Now,
		mountPrefix:      cfg.MountPrefix,
		vaultPublicAddr:  cfg.VaultPublicAddr,
		finalizerTimeout: cfg.FinalizerTimeout,
	}
	c.metrics.cas.use(c.caLister)
	c.queue = controller.New(Name, c.sync, controller.WithLogger(cfg.Log))
	if err := c.watch(caInformer.Informer(), cmInformer.Informer()); err != nil {
		return nil, err
	}
	if err := c.watchCertificates(certInformer); err != nil {
		return nil, fmt.Errorf("watch Certificates: %w", err)
	}
	return c, nil
}

// complete checks that cfg has every dependency and fills in the defaults of its settings.
func (cfg Config) complete() (Config, error) {
	if cfg.Kube == nil || cfg.Client == nil || cfg.Vault == nil || cfg.Recorder == nil || cfg.Metrics == nil ||
		cfg.Informers.Kube == nil || cfg.Informers.ClusterPKI == nil || cfg.Informers.Certificates == nil {
		return cfg, errors.New("certificateauthority controller: Kube, Client, Vault, Recorder, Informers and Metrics are required")
	}
	if cfg.VaultPublicAddr == "" {
		return cfg, errors.New("certificateauthority controller: VaultPublicAddr is required")
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.MountPrefix == "" {
		cfg.MountPrefix = pkipath.DefaultPrefix
	}
	if cfg.FinalizerTimeout <= 0 {
		cfg.FinalizerTimeout = kube.DefaultFinalizerTimeout
	}
	return cfg, pkipath.ValidatePrefix(cfg.MountPrefix)
}

// watch queues the CertificateAuthorities whose changes, or whose ConfigMaps' changes, need a
// sync.
func (c *Controller) watch(cas, configMaps cache.SharedIndexInformer) error {
	// Resyncs matter here: they are how drift made in Vault behind our back gets repaired.
	// Updates that only echo our own status or finalizer writes are dropped: they would make
	// every CA converge twice for nothing.
	handler := c.queue.EventHandler(nil, controller.HandleResyncs)
	handler.UpdateFunc = func(oldObj, newObj any) {
		if oldCA, ok := oldObj.(*v1alpha1.CertificateAuthority); ok {
			if newCA, ok := newObj.(*v1alpha1.CertificateAuthority); ok && !NeedsSync(oldCA, newCA) {
				return
			}
		}
		c.queue.Enqueue(newObj)
	}
	if _, err := cas.AddEventHandler(handler); err != nil {
		return fmt.Errorf("watch CertificateAuthorities: %w", err)
	}
	// A ConfigMap we publish that is changed or deleted brings its CA back to be repaired.
	// Its creation is the echo of our own write and is not queued.
	cmHandler := c.queue.MappedEventHandler(ownerOfConfigMap, controller.IgnoreResyncs)
	cmHandler.AddFunc = nil
	if _, err := configMaps.AddEventHandler(cmHandler); err != nil {
		return fmt.Errorf("watch ConfigMaps: %w", err)
	}
	return nil
}

// Informers are the shared informer factories the controller reads from: one for the
// CertificateAuthorities, one for ConfigMaps, which lists and watches only the ConfigMaps the
// ca-operator publishes, so the cache does not grow with the cluster's others, and one for
// Certificates, whose cache keeps only what a root rotation counts (stripCertificate).
type Informers struct {
	Kube         kubeinformers.SharedInformerFactory
	ClusterPKI   informers.SharedInformerFactory
	Certificates informers.SharedInformerFactory
}

// NewInformers returns the factories for namespace (all namespaces when empty). The
// CertificateAuthorities are resynced every resync, which is how drift in Vault is repaired;
// the ConfigMaps never are: a change to one brings its own event.
func NewInformers(kubeClient kubernetes.Interface, client clientset.Interface, namespace string, resync time.Duration) Informers {
	selector := ConfigMapSelector().String()
	return Informers{
		Kube: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, 0,
			kubeinformers.WithNamespace(namespace),
			kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector })),
		ClusterPKI: informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithNamespace(namespace)),
		// No resync: the counts change only with the Certificates' own events.
		Certificates: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
			informers.WithTransform(stripCertificate)),
	}
}

// Start starts every informer the controller asked for; call it after NewController.
func (i Informers) Start(ctx context.Context) {
	i.Kube.Start(ctx.Done())
	i.ClusterPKI.Start(ctx.Done())
	i.Certificates.Start(ctx.Done())
}

// Shutdown waits for the informers' goroutines to end once ctx is done.
func (i Informers) Shutdown() {
	i.Kube.Shutdown()
	i.ClusterPKI.Shutdown()
	i.Certificates.Shutdown()
}

// ConfigMapSelector selects the ConfigMaps the ca-operator publishes, so the informer
// caches only those.
func ConfigMapSelector() labels.Selector {
	req, _ := labels.NewRequirement(v1alpha1.LabelCertificateAuthority, selection.Exists, nil)
	return labels.NewSelector().Add(*req)
}

// ownerOfConfigMap maps a published ConfigMap to the CA it belongs to.
func ownerOfConfigMap(obj any) []cache.ObjectName {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	name := cm.Labels[v1alpha1.LabelCertificateAuthority]
	if name == "" {
		return nil
	}
	return []cache.ObjectName{{Namespace: cm.Namespace, Name: name}}
}

// Run waits for the caches, then converges CAs with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.queue.Run(ctx, workers, c.hasSynced...)
}

// Ready returns nil once the caches have synced and the workers run.
func (c *Controller) Ready() error { return c.queue.Ready() }

// NeedsSync reports whether an update of a CertificateAuthority can change what the controller
// does: a resync (same resourceVersion), a spec change, new annotations or labels, or deletion.
// A change of status or finalizers alone is the echo of the controller's own write.
func NeedsSync(oldCA, newCA *v1alpha1.CertificateAuthority) bool {
	switch {
	case oldCA.ResourceVersion == newCA.ResourceVersion:
		return true
	case oldCA.Generation != newCA.Generation:
		return true
	case !maps.Equal(oldCA.Annotations, newCA.Annotations) || !maps.Equal(oldCA.Labels, newCA.Labels):
		return true
	case (oldCA.DeletionTimestamp == nil) != (newCA.DeletionTimestamp == nil):
		return true
	case wantsFinalizer(newCA) != kube.HasFinalizer(newCA, Finalizer) && newCA.DeletionTimestamp == nil:
		return true // someone removed our finalizer (or added it): put it right
	}
	return false
}
