// Package ca holds the CertificateAuthority controller: it converges Vault (a root mount and
// an issuing mount per cluster, their CAs and roles) and a ConfigMap with the root
// certificate to each CertificateAuthority's spec, and reports what it finds in status.
package ca

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	informers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Finalizer keeps a CertificateAuthority until its deletion policy has been carried out.
const Finalizer = "clusterpki.dev/certificate-authority"

// ManagedByValue is the value of the managed-by label on objects the ca-operator creates.
const ManagedByValue = contract.ManagedByValue

// Config holds the settings of the controller that do not come from the spec.
type Config struct {
	// MountPrefix is the Vault path under which every CA's mounts live (pkg/pkipath).
	MountPrefix string
	// VaultPublicAddr is the Vault address written into certificates' AIA and CRL URLs.
	VaultPublicAddr string
	// ResyncPeriod re-syncs every CA this often so drift in Vault is repaired.
	ResyncPeriod time.Duration
	// FinalizerTimeout is how long after a CA's deletion the unmounting its deletionPolicy
	// asks for is retried before the finalizer is released with a Warning (default
	// kube.DefaultFinalizerTimeout).
	FinalizerTimeout time.Duration
}

// Controller converges CertificateAuthorities.
type Controller struct {
	cfg      Config
	log      logrus.FieldLogger
	kube     kubernetes.Interface
	client   clientset.Interface
	pki      *pki
	recorder record.EventRecorder
	now      func() time.Time

	caLister  listers.CertificateAuthorityLister
	cmLister  corelisters.ConfigMapLister
	hasSynced []cache.InformerSynced

	ctrl *controller.Controller
}

// New wires a Controller to its informers. Start the factories after calling it.
func New(cfg Config, log logrus.FieldLogger, kube kubernetes.Interface, client clientset.Interface,
	vault VaultClient, recorder record.EventRecorder,
	caInformers informers.SharedInformerFactory, kubeInformers kubeinformers.SharedInformerFactory) (*Controller, error) {
	c := &Controller{
		cfg:      cfg,
		log:      log,
		kube:     kube,
		client:   client,
		pki:      &pki{vault: vault},
		recorder: recorder,
		now:      time.Now,
	}
	c.ctrl = controller.New("certificateauthority", c.sync, controller.WithLogger(log))

	caInformer := caInformers.Clusterpki().V1alpha1().CertificateAuthorities()
	c.caLister = caInformer.Lister()
	statusMetrics.use(c.caLister)
	// Resyncs matter here: they are how drift made in Vault behind our back gets repaired.
	// Updates that only echo our own status or finalizer writes are dropped: they would make
	// every CA converge twice for nothing.
	handler := c.ctrl.EventHandler(nil, controller.HandleResyncs)
	handler.UpdateFunc = func(oldObj, newObj any) {
		if oldCA, ok := oldObj.(*v1alpha1.CertificateAuthority); ok {
			if newCA, ok := newObj.(*v1alpha1.CertificateAuthority); ok && !NeedsSync(oldCA, newCA) {
				return
			}
		}
		c.ctrl.Enqueue(newObj)
	}
	if _, err := caInformer.Informer().AddEventHandler(handler); err != nil {
		return nil, fmt.Errorf("watch CertificateAuthorities: %w", err)
	}

	cmInformer := kubeInformers.Core().V1().ConfigMaps()
	c.cmLister = cmInformer.Lister()
	// A ConfigMap we publish that is changed or deleted brings its CA back to be repaired.
	// Its creation is the echo of our own write and is not queued.
	cmHandler := c.ctrl.MappedEventHandler(ownerOfConfigMap, controller.IgnoreResyncs)
	cmHandler.AddFunc = nil
	if _, err := cmInformer.Informer().AddEventHandler(cmHandler); err != nil {
		return nil, fmt.Errorf("watch ConfigMaps: %w", err)
	}
	c.hasSynced = []cache.InformerSynced{caInformer.Informer().HasSynced, cmInformer.Informer().HasSynced}
	return c, nil
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
	return c.ctrl.Run(ctx, workers, c.hasSynced...)
}

// Ready reports whether the caches have synced and the workers run.
func (c *Controller) Ready() error {
	if !c.ctrl.HasSyncedAndRunning() {
		return fmt.Errorf("certificateauthority controller not running yet")
	}
	return nil
}

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
	case !kube.HasFinalizer(newCA, Finalizer) && newCA.DeletionTimestamp == nil:
		return true // someone removed our finalizer: put it back
	}
	return false
}
