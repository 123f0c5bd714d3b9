// Package certificate is the Certificate controller: it issues each Certificate's key pair from
// its CertificateAuthority's issuing CA in Vault into a kubernetes.io/tls Secret, and renews,
// re-issues and revokes it as the Certificate, the Secret and the CA change.
package certificate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	listers "github.com/clusterpki/clusterpki/apis/generated/listers/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// Name is the controller's name in logs, metrics and events.
const Name = "certificate"

// indexByCA indexes Certificates by the namespace/name of the CertificateAuthority they use.
const indexByCA = "byCA"

// Vault is the part of the Vault client the controller uses: one write per sign or revoke,
// labelled with op for its metrics.
type Vault interface {
	Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error)
}

// Config holds what NewController needs: its dependencies, then its settings.
type Config struct {
	// Log is the logger (default logrus's standard logger).
	Log logrus.FieldLogger
	// Kube reads and writes Secrets.
	Kube kube.CoreClient
	// Client writes Certificates' status and finalizers.
	Client versioned.Interface
	// Vault signs and revokes; pkg/vault's client counts its requests.
	Vault Vault
	// Recorder records events on Certificates.
	Recorder record.EventRecorder
	// Informers are the caches the controller reads; start them after NewController.
	Informers Informers
	// Metrics are the controller's metrics (NewMetrics).
	Metrics *Metrics

	// MaxBackoff caps the delay between retries of a failing issuance (default 5 minutes).
	MaxBackoff time.Duration
	// FinalizerTimeout is how long after a Certificate's deletion its revocation is retried
	// before the finalizer is released with a Warning (default kube.DefaultFinalizerTimeout).
	FinalizerTimeout time.Duration
	// MountPrefix is the Vault path under which every CA's mounts live (default
	// pkipath.DefaultPrefix); the controller signs and revokes only below it.
	MountPrefix string
	// RotationReissueInterval is the time between two re-issues onto a CA's new root while
	// its root rotation runs, across all CAs (0: no bound; the command's flag defaults to
	// DefaultRotationReissueInterval).
	RotationReissueInterval time.Duration
}

// Controller issues and renews the certificates of Certificate objects.
type Controller struct {
	kube     kube.CoreClient
	client   versioned.Interface
	vault    Vault
	recorder record.EventRecorder
	metrics  *Metrics
	log      logrus.FieldLogger

	certificates listers.CertificateLister
	cas          listers.CertificateAuthorityLister
	secrets      corelisters.SecretLister
	// secretFacts holds what the decisions read of the cached Secrets' data, which the cache
	// itself does not keep.
	secretFacts *secretFacts
	// trustBundles keeps the CAs' parsed trust bundles.
	trustBundles *trustBundles
	// rotation spaces the re-issues of root rotations.
	rotation  *rotationBound
	byCA      cache.Indexer
	hasSynced []cache.InformerSynced

	queue *controller.Controller

	// now is a field so tests can set the clock.
	now         func() time.Time
	maxBackoff  time.Duration
	mountPrefix string

	finalizerTimeout time.Duration
}

// NewController returns a controller reading from cfg.Informers, whose handlers it registers;
// start the informers after this call.
func NewController(cfg Config) (*Controller, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	certInformer := cfg.Informers.ClusterPKI.Clusterpki().V1alpha1().Certificates()
	caInformer := cfg.Informers.ClusterPKI.Clusterpki().V1alpha1().CertificateAuthorities()
	secretInformer := cfg.Informers.Secrets

	c := &Controller{
		kube:         cfg.Kube,
		client:       cfg.Client,
		vault:        withinPrefix{Vault: cfg.Vault, prefix: cfg.MountPrefix},
		recorder:     cfg.Recorder,
		metrics:      cfg.Metrics,
		log:          cfg.Log.WithField("controller", Name),
		certificates: certInformer.Lister(),
		cas:          caInformer.Lister(),
		secrets:      corelisters.NewSecretLister(secretInformer.GetIndexer()),
		secretFacts:  newSecretFacts(),
		trustBundles: &trustBundles{},
		rotation:     newRotationBound(cfg.RotationReissueInterval),
		byCA:         certInformer.Informer().GetIndexer(),
		now:          time.Now,
		maxBackoff:   cfg.MaxBackoff,
		mountPrefix:  cfg.MountPrefix,

		finalizerTimeout: cfg.FinalizerTimeout,
	}
	cfg.Metrics.certificates.use(c.certificates)
	c.queue = controller.New(Name, c.sync, controller.WithLogger(cfg.Log), controller.WithMaxBackoff(cfg.MaxBackoff),
		controller.WithMetrics(cfg.Metrics.queue))
	if err := c.watch(certInformer.Informer(), caInformer.Informer(), secretInformer); err != nil {
		return nil, err
	}
	return c, nil
}

// complete checks that cfg has every dependency and fills in the defaults of the settings.
func (cfg *Config) complete() error {
	if cfg.Kube == nil || cfg.Client == nil || cfg.Vault == nil || cfg.Recorder == nil || cfg.Metrics == nil {
		return errors.New("certificate: Config needs Kube, Client, Vault, Recorder and Metrics")
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.FinalizerTimeout == 0 {
		cfg.FinalizerTimeout = kube.DefaultFinalizerTimeout
	}
	if cfg.MountPrefix == "" {
		cfg.MountPrefix = pkipath.DefaultPrefix
	}
	return pkipath.ValidatePrefix(cfg.MountPrefix)
}

// watch sets the caches' transforms and index and registers the controller's event handlers
// on the informers of Certificates, CertificateAuthorities and Secrets.
func (c *Controller) watch(certs, cas, secrets cache.SharedIndexInformer) error {
	if err := certs.SetTransform(stripManagedFields); err != nil {
		return fmt.Errorf("set informer transform: %w", err)
	}
	if err := secrets.SetTransform(c.secretFacts.transform); err != nil {
		return fmt.Errorf("set informer transform: %w", err)
	}
	if err := certs.AddIndexers(cache.Indexers{indexByCA: certificateCAIndex}); err != nil {
		return fmt.Errorf("add certificate index: %w", err)
	}
	// Resyncs of Certificates are handled: a sync that finds nothing to do writes nothing, and
	// it re-arms a renewal whose delayed enqueue was lost.
	if _, err := certs.AddEventHandler(c.queue.EventHandler(nil, controller.HandleResyncs)); err != nil {
		return fmt.Errorf("watch certificates: %w", err)
	}
	if _, err := cas.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueCertificatesOf,
		UpdateFunc: c.caUpdated,
		DeleteFunc: c.caDeleted,
	}); err != nil {
		return fmt.Errorf("watch certificate authorities: %w", err)
	}
	if _, err := secrets.AddEventHandler(c.queue.MappedEventHandler(secretOwner, controller.IgnoreResyncs)); err != nil {
		return fmt.Errorf("watch secrets: %w", err)
	}
	if _, err := secrets.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.secretFacts.forget}); err != nil {
		return fmt.Errorf("watch secrets: %w", err)
	}
	c.hasSynced = []cache.InformerSynced{certs.HasSynced, cas.HasSynced, secrets.HasSynced}
	return nil
}

// Run waits for the caches and runs workers workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.queue.Run(ctx, workers, c.hasSynced...)
}

// Ready returns nil once the controller's caches have synced and its workers run, and otherwise
// an error saying what is not ready.
func (c *Controller) Ready() error { return c.queue.Ready() }

// certificateCAIndex returns the namespace/name of the CertificateAuthority a Certificate uses.
func certificateCAIndex(obj any) ([]string, error) {
	cert, ok := obj.(*v1alpha1.Certificate)
	if !ok {
		return nil, nil
	}
	return []string{cert.Namespace + "/" + cert.Spec.CARef.Name}, nil
}

// secretOwner returns the Certificate a Secret is labelled with.
func secretOwner(obj any) []cache.ObjectName {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return nil
	}
	name, ours := secret.Owner(s)
	if !ours {
		return nil
	}
	return []cache.ObjectName{{Namespace: s.Namespace, Name: name}}
}

// caUpdated queues the Certificates of a CertificateAuthority whose change can matter to them:
// readiness, its root, or its roles.
func (c *Controller) caUpdated(oldObj, newObj any) {
	o, ok1 := oldObj.(*v1alpha1.CertificateAuthority)
	n, ok2 := newObj.(*v1alpha1.CertificateAuthority)
	if !ok1 || !ok2 || !caChangeMatters(o, n) {
		return
	}
	c.enqueueCertificatesOf(n)
}

// caDeleted queues the Certificates of a deleted CertificateAuthority and forgets its trust
// bundle.
func (c *Controller) caDeleted(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if ca, ok := obj.(*v1alpha1.CertificateAuthority); ok {
		c.trustBundles.forget(ca)
	}
	c.enqueueCertificatesOf(obj)
}

// caChangeMatters reports whether Certificates must look again after a CA changed from o to n:
// its readiness, its root, its trust bundle, the phase of its root rotation (which decides
// whether re-issues wait for the rotation bound), or its roles.
func caChangeMatters(o, n *v1alpha1.CertificateAuthority) bool {
	if conditions.IsTrue(o.Status.Conditions, v1alpha1.ConditionReady) != conditions.IsTrue(n.Status.Conditions, v1alpha1.ConditionReady) {
		return true
	}
	if rootFingerprint(o) != rootFingerprint(n) || o.Spec.ClusterID != n.Spec.ClusterID {
		return true
	}
	if o.Status.TrustBundle != n.Status.TrustBundle || rotationPhase(o) != rotationPhase(n) {
		return true
	}
	return !equality.Semantic.DeepEqual(o.Status.Roles, n.Status.Roles)
}

// enqueueCertificatesOf queues every Certificate that uses the CertificateAuthority obj.
func (c *Controller) enqueueCertificatesOf(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	ca, ok := obj.(*v1alpha1.CertificateAuthority)
	if !ok {
		return
	}
	objs, err := c.byCA.ByIndex(indexByCA, ca.Namespace+"/"+ca.Name)
	if err != nil {
		c.log.WithError(err).Warn("cannot look up the certificates of a certificate authority")
		return
	}
	for _, o := range objs {
		c.queue.Enqueue(o)
	}
}

// rotationPhase returns the phase of ca's root rotation, "" when it never had one.
func rotationPhase(ca *v1alpha1.CertificateAuthority) v1alpha1.RootRotationPhase {
	if ca.Status.RootRotation == nil {
		return ""
	}
	return ca.Status.RootRotation.Phase
}

// rootFingerprint returns the fingerprint of ca's root, or "" when it has none yet.
func rootFingerprint(ca *v1alpha1.CertificateAuthority) string {
	if ca.Status.Root == nil {
		return ""
	}
	return ca.Status.Root.FingerprintSHA256
}

// findRole returns the provisioned role called name of ca.
func findRole(ca *v1alpha1.CertificateAuthority, name string) (v1alpha1.ProvisionedRole, bool) {
	i := slices.IndexFunc(ca.Status.Roles, func(r v1alpha1.ProvisionedRole) bool { return r.Name == name })
	if i < 0 {
		return v1alpha1.ProvisionedRole{}, false
	}
	return ca.Status.Roles[i], true
}

// withinPrefix refuses, before anything is sent, every Vault request to a path outside the
// mount prefix: whatever an object says, the cert-operator never calls Vault elsewhere.
type withinPrefix struct {
	Vault
	prefix string
}

// Write sends the request when path lies below the prefix.
func (v withinPrefix) Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	if !pkipath.Within(v.prefix, path) {
		return nil, fmt.Errorf("refusing Vault %s on %q: outside the mount prefix %q", op, path, v.prefix)
	}
	return v.Vault.Write(ctx, op, path, data)
}
