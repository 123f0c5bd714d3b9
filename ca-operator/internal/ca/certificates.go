package ca

import (
	"slices"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
)

// The ca-operator reads Certificates only to count, during a root rotation, how many of a CA's
// issued Certificates trust the bundle and how many moved to the new root. Its cache keeps of
// each Certificate only what that count needs (stripCertificate), so that it stays small with
// tens of thousands of them, and indexes them by the CA they name.

// caRefIndex indexes Certificates by "<namespace>/<spec.caRef.name>".
const caRefIndex = "caRef"

// caRefKey is the caRefIndex key of the CA namespace/name.
func caRefKey(namespace, name string) string { return namespace + "/" + name }

// indexByCARef is the caRefIndex function.
func indexByCARef(obj any) ([]string, error) {
	cert, ok := obj.(*v1alpha1.Certificate)
	if !ok {
		return nil, nil
	}
	return []string{caRefKey(cert.Namespace, cert.Spec.CARef.Name)}, nil
}

// stripCertificate is the Certificate informer's transform: it keeps the name, the CA
// reference, whether the Certificate is Ready, and the two fingerprints the cert-operator
// reports (rootFingerprintSHA256, trustedRootsSHA256); everything else is dropped before the
// object enters the cache.
func stripCertificate(obj any) (any, error) {
	cert, ok := obj.(*v1alpha1.Certificate)
	if !ok {
		return obj, nil // a tombstone, whose object was stripped when it was cached
	}
	out := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: cert.Name, Namespace: cert.Namespace, UID: cert.UID, ResourceVersion: cert.ResourceVersion},
		Spec:       v1alpha1.CertificateSpec{CARef: cert.Spec.CARef},
		Status: v1alpha1.CertificateStatus{
			RootFingerprintSHA256: cert.Status.RootFingerprintSHA256,
			TrustedRootsSHA256:    cert.Status.TrustedRootsSHA256,
		},
	}
	if conditions.IsTrue(cert.Status.Conditions, v1alpha1.ConditionReady) {
		out.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
	}
	return out, nil
}

// countedFacts are what the counts read of one Certificate.
type countedFacts struct {
	ca, root string
	ready    bool
	trusted  []string
}

// factsOf returns the counted facts of a Certificate.
func factsOf(cert *v1alpha1.Certificate) countedFacts {
	return countedFacts{ca: cert.Spec.CARef.Name, root: cert.Status.RootFingerprintSHA256,
		ready: conditions.IsTrue(cert.Status.Conditions, v1alpha1.ConditionReady), trusted: cert.Status.TrustedRootsSHA256}
}

// equal reports whether two Certificates' counted facts are the same.
func (f countedFacts) equal(o countedFacts) bool {
	return f.ca == o.ca && f.root == o.root && f.ready == o.ready && slices.Equal(f.trusted, o.trusted)
}

// watchCertificates queues a CA whose rotation runs when one of its Certificates changes what
// it counts (added, deleted, Ready, trusted roots, root).
func (c *Controller) watchCertificates(certs cache.SharedIndexInformer) error {
	if err := certs.AddIndexers(cache.Indexers{caRefIndex: indexByCARef}); err != nil {
		return err
	}
	_, err := certs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.certificateChanged(nil, obj) },
		UpdateFunc: func(oldObj, newObj any) {
			c.certificateChanged(oldObj, newObj)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			c.certificateChanged(nil, obj)
		},
	})
	return err
}

// certificateChanged queues the CA (or both CAs, when caRef changed) of a Certificate whose
// counted facts changed, if a root rotation runs on it.
func (c *Controller) certificateChanged(oldObj, newObj any) {
	cert, ok := newObj.(*v1alpha1.Certificate)
	if !ok {
		return
	}
	names := []string{cert.Spec.CARef.Name}
	if old, ok := oldObj.(*v1alpha1.Certificate); ok {
		if factsOf(old).equal(factsOf(cert)) {
			return
		}
		if old.Spec.CARef.Name != cert.Spec.CARef.Name {
			names = append(names, old.Spec.CARef.Name)
		}
	}
	for _, name := range names {
		ca, err := c.caLister.CertificateAuthorities(cert.Namespace).Get(name)
		if err == nil && contract.RootRotationRunning(ca) {
			c.queue.EnqueueKey(cache.ObjectName{Namespace: cert.Namespace, Name: name})
		}
	}
}

// rootCounts counts the Certificates of the CA namespace/name: those that hold a certificate
// (Total), those whose trusted roots are bundleFPs (Trusting), and those issued under the root
// newRootFP (Moved). notTrusting and notMoved name, sorted, the counted ones missing from each.
func (c *Controller) rootCounts(namespace, name string, bundleFPs []string, newRootFP string) (n RootCounts, notTrusting, notMoved []string) {
	objs, err := c.certIndexer.ByIndex(caRefIndex, caRefKey(namespace, name))
	if err != nil {
		return n, nil, nil
	}
	for _, obj := range objs {
		cert, ok := obj.(*v1alpha1.Certificate)
		// Every Certificate that holds a certificate counts, Ready or not: one whose re-issue
		// fails still chains to the old root, and retiring that root would cut it off. It
		// holds the rotation, and RootRotationStalled names it. One never issued has nothing
		// to move.
		if !ok || cert.Status.RootFingerprintSHA256 == "" {
			continue
		}
		n.Total++
		trusting := len(bundleFPs) > 0 && slices.Equal(cert.Status.TrustedRootsSHA256, bundleFPs)
		moved := newRootFP != "" && cert.Status.RootFingerprintSHA256 == newRootFP
		if trusting {
			n.Trusting++
		} else {
			notTrusting = append(notTrusting, cert.Name)
		}
		if moved {
			n.Moved++
		} else {
			notMoved = append(notMoved, cert.Name)
		}
	}
	sort.Strings(notTrusting)
	sort.Strings(notMoved)
	return n, notTrusting, notMoved
}
