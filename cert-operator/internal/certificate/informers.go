package certificate

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Informers are the caches the controller reads from: the clusterpki kinds' shared informer
// factory, and an informer of Secrets, which lists and watches only the Secrets labelled with
// the Certificate they belong to, so the cache does not grow with the cluster's other Secrets.
// The Secret informer is built on the typed core/v1 client rather than client-go's informer
// factory, which would link (and need) the umbrella Clientset of every API group.
type Informers struct {
	Secrets    cache.SharedIndexInformer
	ClusterPKI externalversions.SharedInformerFactory

	wg *sync.WaitGroup
}

// NewInformers returns the informers for namespace (all namespaces when empty) with the given
// resync period.
func NewInformers(kubeClient kube.CoreClient, client versioned.Interface, namespace string, resync time.Duration) Informers {
	secrets := kubeClient.CoreV1().Secrets(namespace)
	tweak := func(o *metav1.ListOptions) { o.LabelSelector = v1alpha1.LabelCertificate }
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return secrets.Watch(ctx, o)
		},
	}
	return Informers{
		// As client-go's generated Secret informer does: the wrapper tells the reflector
		// whether the client can stream a watch list (fake clients cannot).
		Secrets: cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, kubeClient),
			// No namespace index: the controller only gets Secrets by key.
			&corev1.Secret{}, cache.SharedIndexInformerOptions{ResyncPeriod: resync, Indexers: cache.Indexers{}}),
		ClusterPKI: externalversions.NewSharedInformerFactoryWithOptions(client, resync,
			externalversions.WithNamespace(namespace)),
		wg: &sync.WaitGroup{},
	}
}

// Start starts every informer the controller asked for; call it after NewController.
func (i Informers) Start(ctx context.Context) {
	i.wg.Go(func() { i.Secrets.RunWithContext(ctx) })
	i.ClusterPKI.Start(ctx.Done())
}

// Shutdown waits for the informers' goroutines to end once ctx is done.
func (i Informers) Shutdown() {
	i.wg.Wait()
	i.ClusterPKI.Shutdown()
}

// stripManagedFields drops from cached objects what the controller never reads and what can be
// large: managedFields, and kubectl's copy of the whole object in the last-applied annotation;
// it shares the strings every object repeats (see interned).
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, corev1.LastAppliedConfigAnnotation)
		}
		internMeta(m)
	}
	if c, ok := obj.(*v1alpha1.Certificate); ok {
		c.Spec.CARef.Name = interned.get(c.Spec.CARef.Name)
		c.Spec.Role = interned.get(c.Spec.Role)
		for i := range c.Status.Conditions {
			cond := &c.Status.Conditions[i]
			cond.Type, cond.Reason = interned.get(cond.Type), interned.get(cond.Reason)
		}
		// Every Certificate of a CA reports the same root and trusted roots: one value per
		// root, one list per trust bundle.
		c.Status.RootFingerprintSHA256 = interned.get(c.Status.RootFingerprintSHA256)
		c.Status.TrustedRootsSHA256 = internedLists.get(c.Status.TrustedRootsSHA256)
	}
	return obj, nil
}

var _ cache.TransformFunc = stripManagedFields

// interned holds the strings that thousands of cached objects repeat — label and annotation
// keys, our label values, namespaces, owner kinds, condition types and reasons — so the cache
// keeps each once. Only such strings are put in: the set stays as small as the vocabulary.
var interned = &stringPool{m: map[string]string{}}

// stringPool is a set of shared strings.
type stringPool struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns the pool's copy of s, adding s when it is new.
func (p *stringPool) get(s string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if known, ok := p.m[s]; ok {
		return known
	}
	p.m[s] = s
	return s
}

// internedLists holds the lists of strings that many cached objects repeat (the trusted roots
// of every Certificate of a CA), keyed by their content. The cache never changes what it holds
// (the controller works on copies), so objects may share one list.
var internedLists = &listPool{m: map[string][]string{}}

// listPool is a set of shared string lists.
type listPool struct {
	mu sync.Mutex
	m  map[string][]string
}

// get returns the pool's copy of list (its strings interned too), adding it when it is new;
// an empty list is returned as it is.
func (p *listPool) get(list []string) []string {
	if len(list) == 0 {
		return list
	}
	key := strings.Join(list, "\x00")
	p.mu.Lock()
	defer p.mu.Unlock()
	if known, ok := p.m[key]; ok {
		return known
	}
	shared := make([]string, len(list))
	for i, s := range list {
		shared[i] = interned.get(s)
	}
	p.m[key] = shared
	return shared
}

// sharedLabelValues are the labels whose values repeat across objects.
var sharedLabelValues = map[string]bool{v1alpha1.LabelManagedBy: true, v1alpha1.LabelClusterID: true}

// sharedAnnotationValues are the annotations whose values repeat across objects: the root
// fingerprint every Secret of a CA records (one value per root).
var sharedAnnotationValues = map[string]bool{secret.AnnotationRootFingerprint: true}

// internMeta shares the repeated strings of m's metadata: namespace, label and annotation keys,
// the values of sharedLabelValues and sharedAnnotationValues, and owner references' API
// versions and kinds.
func internMeta(m metav1.Object) {
	m.SetNamespace(interned.get(m.GetNamespace()))
	m.SetLabels(internMap(m.GetLabels(), sharedLabelValues))
	m.SetAnnotations(internMap(m.GetAnnotations(), sharedAnnotationValues))
	refs := m.GetOwnerReferences()
	for i := range refs {
		refs[i].APIVersion, refs[i].Kind = interned.get(refs[i].APIVersion), interned.get(refs[i].Kind)
	}
}

// internMap returns a copy of from whose keys, and the values of the keys in sharedValues,
// are the pool's strings (from itself when empty).
func internMap(from map[string]string, sharedValues map[string]bool) map[string]string {
	if len(from) == 0 {
		return from
	}
	shared := make(map[string]string, len(from))
	for k, v := range from {
		if sharedValues[k] {
			v = interned.get(v)
		}
		shared[interned.get(k)] = v
	}
	return shared
}
