package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
)

// readyLimit bounds the wait for CAs and Certificates made by a test to be Ready.
const readyLimit = 4 * time.Minute

// phaseRank orders the phases of a rotation; none ("") comes first.
var phaseRank = map[v1alpha1.RootRotationPhase]int{
	"": 0, v1alpha1.RootRotationPreparing: 1, v1alpha1.RootRotationTrusting: 2, v1alpha1.RootRotationMoving: 3,
	v1alpha1.RootRotationOverlap: 4, v1alpha1.RootRotationRetiring: 5, v1alpha1.RootRotationCompleted: 6,
}

// pkiClient returns a clientset for the clusterpki kinds with the admin's credentials.
func pkiClient(t *testing.T) versioned.Interface {
	t.Helper()
	c, err := versioned.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// phase returns ca's rotation phase, "" when none ever ran.
func phase(ca *v1alpha1.CertificateAuthority) v1alpha1.RootRotationPhase {
	if ca.Status.RootRotation == nil {
		return ""
	}
	return ca.Status.RootRotation.Phase
}

// createNamespace creates namespace ns.
func createNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	_, err := env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// newCA returns a CertificateAuthority whose rotations overlap for the least the API
// allows (1m), with a role "server" for names under example.com.
func newCA(ns, name string) *v1alpha1.CertificateAuthority {
	return &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: name,
			Root:      v1alpha1.RootCASpec{CommonName: name + " root", RotationOverlap: "1m"},
			Roles:     []v1alpha1.RoleSpec{{Name: "server", AllowedDomains: []string{"example.com"}, AllowSubdomains: true}},
		},
	}
}

// createCA creates a CA with n Certificates (Secrets named after them) and returns the
// Certificates' names.
func createCA(ctx context.Context, t *testing.T, ns, name string, n int) []string {
	t.Helper()
	c := pkiClient(t).ClusterpkiV1alpha1()
	if _, err := c.CertificateAuthorities(ns).Create(ctx, newCA(ns, name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range n {
		cert := fmt.Sprintf("%s-%02d", name, i)
		_, err := c.Certificates(ns).Create(ctx, &v1alpha1.Certificate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cert},
			Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: name}, Role: "server", SecretName: cert,
				CommonName: cert + ".example.com"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, cert)
	}
	return names
}

// waitReady waits until CA ns/ca and the Certificates certs are Ready, each with its Secret.
func waitReady(ctx context.Context, t *testing.T, ns, ca string, certs []string) {
	t.Helper()
	c := pkiClient(t).ClusterpkiV1alpha1()
	eventually(ctx, t, readyLimit, fmt.Sprintf("CA %s/%s and its %d Certificates Ready", ns, ca, len(certs)), func() error {
		got, err := c.CertificateAuthorities(ns).Get(ctx, ca, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("CA %s not Ready: %v", ca, got.Status.Conditions)
		}
		for _, name := range certs {
			cert, err := c.Certificates(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !meta.IsStatusConditionTrue(cert.Status.Conditions, v1alpha1.ConditionReady) {
				return fmt.Errorf("Certificate %s not Ready: %v", name, cert.Status.Conditions)
			}
			if _, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, cert.Spec.SecretName, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// requestRotation sets the rotate-root annotation of CA ns/name to value with client c.
func requestRotation(ctx context.Context, c versioned.Interface, ns, name, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationRotateRoot, value)
	_, err := c.ClusterpkiV1alpha1().CertificateAuthorities(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

// eventually polls check every 250ms until it returns nil, failing t after limit.
func eventually(ctx context.Context, t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	if err := poll(ctx, limit, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// poll calls check every 250ms until it returns nil, and returns its last error after limit.
func poll(ctx context.Context, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// caWatch follows one CertificateAuthority.
type caWatch struct {
	// C delivers every version of the CA the API server reports, starting with the current
	// one, in order; it closes when the watch's context ends or the watch fails for good.
	C <-chan *v1alpha1.CertificateAuthority

	mu  sync.Mutex
	err error
}

// Err says why C closed before the watch's context ended (nil otherwise).
func (w *caWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// watchCA follows CA ns/name from now on. A watch that breaks is resumed where it stopped, so
// no version is missed.
func watchCA(ctx context.Context, t *testing.T, ns, name string) *caWatch {
	t.Helper()
	cas := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(ns)
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	// The watch starts at the list's resourceVersion, which is now: the object's own may be
	// older than what the API server's watch cache still holds (410 Gone).
	list, err := cas.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("CertificateAuthority %s/%s: %d found", ns, name, len(list.Items))
	}
	first := &list.Items[0]
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return cas.Watch(ctx, opts)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *v1alpha1.CertificateAuthority, 64)
	w := &caWatch{C: out}
	fail := func(err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.err = errors.Join(w.err, err)
	}
	go func() {
		defer close(out)
		defer rw.Stop()
		out <- first
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-rw.ResultChan():
				if !ok {
					fail(fmt.Errorf("the watch of CertificateAuthority %s/%s stopped", ns, name))
					return
				}
				switch ca, isCA := ev.Object.(*v1alpha1.CertificateAuthority); {
				case ev.Type == watch.Error:
					fail(fmt.Errorf("watch of CertificateAuthority %s/%s: %v", ns, name, apierrors.FromObject(ev.Object)))
				case isCA && (ev.Type == watch.Added || ev.Type == watch.Modified):
					select {
					case out <- ca:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return w
}

// reissue is a Secret seen with a certificate of a new serial number.
type reissue struct {
	at     time.Time
	secret string
	serial string
	chain  []*x509.Certificate
}

// serialWatch records, as they happen, the Secrets of one namespace whose tls.crt changes to a
// certificate of another serial number: a re-issue, as a consumer of the Secret sees it.
type serialWatch struct {
	mu       sync.Mutex
	serials  map[string]string // by Secret, the last serial seen
	reissues []reissue
	err      error
}

// watchSerials starts recording the re-issues of the Secrets clusterpki manages in ns; the
// serials they hold now are the starting point.
func watchSerials(ctx context.Context, t *testing.T, ns string) *serialWatch {
	t.Helper()
	secrets := env.KubeClient.CoreV1().Secrets(ns)
	selector := v1alpha1.LabelManagedBy + "=" + contract.ManagedByValue
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	sw := &serialWatch{serials: map[string]string{}}
	for _, s := range list.Items {
		chain, err := contract.ParseCertificates(s.Data[corev1.TLSCertKey])
		if err != nil {
			t.Fatalf("Secret %s: %v", s.Name, err)
		}
		sw.serials[s.Name] = contract.Serial(chain[0].SerialNumber)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			return secrets.Watch(ctx, opts)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				s, ok := ev.Object.(*corev1.Secret)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				sw.observe(time.Now(), s)
			}
		}
	}()
	return sw
}

// observe records s if its certificate's serial changed.
func (sw *serialWatch) observe(at time.Time, s *corev1.Secret) {
	chain, err := contract.ParseCertificates(s.Data[corev1.TLSCertKey])
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if err != nil {
		sw.err = errors.Join(sw.err, fmt.Errorf("Secret %s: %w", s.Name, err))
		return
	}
	serial := contract.Serial(chain[0].SerialNumber)
	if last, ok := sw.serials[s.Name]; ok && last != serial {
		sw.reissues = append(sw.reissues, reissue{at: at, secret: s.Name, serial: serial, chain: chain})
	}
	sw.serials[s.Name] = serial
}

// result returns the re-issues recorded so far, in the order seen, and any Secret that could
// not be read.
func (sw *serialWatch) result() ([]reissue, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return append([]reissue(nil), sw.reissues...), sw.err
}
