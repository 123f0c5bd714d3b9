package certificate

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
)

// Informers are the shared informer factories the controller reads from: one for the
// clusterpki kinds and one for Secrets, which lists and watches only the Secrets labelled with
// the Certificate they belong to, so the cache does not grow with the cluster's other Secrets.
type Informers struct {
	Kube       kubeinformers.SharedInformerFactory
	ClusterPKI externalversions.SharedInformerFactory
}

// NewInformers returns the factories for namespace (all namespaces when empty) with the given
// resync period.
func NewInformers(kube kubernetes.Interface, client versioned.Interface, namespace string, resync time.Duration) Informers {
	return Informers{
		Kube: kubeinformers.NewSharedInformerFactoryWithOptions(kube, resync,
			kubeinformers.WithNamespace(namespace),
			kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.LabelSelector = v1alpha1.LabelCertificate
			})),
		ClusterPKI: externalversions.NewSharedInformerFactoryWithOptions(client, resync,
			externalversions.WithNamespace(namespace)),
	}
}

// Start starts every informer the controller asked for; call it after NewController.
func (i Informers) Start(ctx context.Context) {
	i.Kube.Start(ctx.Done())
	i.ClusterPKI.Start(ctx.Done())
}

// Shutdown waits for the informers' goroutines to end once ctx is done.
func (i Informers) Shutdown() {
	i.Kube.Shutdown()
	i.ClusterPKI.Shutdown()
}

// stripManagedFields drops managedFields from cached objects: the controller never reads them
// and on Secrets they are a large share of the memory.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

var _ cache.TransformFunc = stripManagedFields
