package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	cpinformers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
)

// certName is the name of the i-th Certificate.
func certName(i int) string { return fmt.Sprintf("cert-%05d", i) }

// caName is the name of the i-th CertificateAuthority.
func caName(i int) string { return fmt.Sprintf("ca-%03d", i) }

// newCertificate is the i-th Certificate of namespace ns, on CA i mod cas.
func newCertificate(ns string, i, cas int, ttl string) *v1alpha1.Certificate {
	name := certName(i)
	return &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: caName(i % cas)}, Role: "server", SecretName: name + "-tls",
			CommonName: name + ".example.com", AltNames: []string{name + ".example.com"}, TTL: ttl,
			PrivateKey: v1alpha1.PrivateKeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA},
		},
	}
}

// parallel runs f(i) for i in [from, to) on n goroutines and returns the first error.
func parallel(ctx context.Context, n, from, to int, f func(ctx context.Context, i int) error) error {
	idx := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		select {
		case idx <- i:
		case <-ctx.Done():
		}
	}
	close(idx)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// createCertificates creates Certificates [from, to) in ns with creators goroutines, telling
// the tracker when each create was sent.
func createCertificates(ctx context.Context, client versioned.Interface, t *tracker, ns string, from, to, cas, creators int, ttl string) error {
	return parallel(ctx, creators, from, to, func(ctx context.Context, i int) error {
		c := newCertificate(ns, i, cas, ttl)
		t.created(c.Name, time.Now())
		if _, err := client.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Certificate %s/%s: %w", ns, c.Name, err)
		}
		return nil
	})
}

// issuingCA is what the baseline needs of a Ready CA.
type issuingCA struct {
	signPath string
	rootPEM  string
}

// baselineIssuer does, for each Certificate of its namespace (which no operator watches),
// only the unavoidable work: an ECDSA P-256 key, a CSR, one Vault sign, one Secret create and
// one status write — with workers goroutines, the operator's --workers.
type baselineIssuer struct {
	kube    kubernetes.Interface
	client  versioned.Interface
	vault   *vaultapi.Client
	cas     map[string]issuingCA
	ns      string
	workers int
	errs    chan error
}

func (b *baselineIssuer) run(ctx context.Context) error {
	queue := make(chan *v1alpha1.Certificate, 1<<16)
	f := cpinformers.NewSharedInformerFactoryWithOptions(b.client, 0, cpinformers.WithNamespace(b.ns))
	inf := f.Clusterpki().V1alpha1().Certificates().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if c, ok := obj.(*v1alpha1.Certificate); ok && len(c.Status.Conditions) == 0 {
			queue <- c
		}
	}}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("baseline informer did not sync")
	}
	b.errs = make(chan error, 1)
	for range b.workers {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-queue:
					if err := b.issue(ctx, c); err != nil && ctx.Err() == nil {
						select {
						case b.errs <- err:
						default:
						}
					}
				}
			}
		}()
	}
	return nil
}

func (b *baselineIssuer) issue(ctx context.Context, c *v1alpha1.Certificate) error {
	ca, ok := b.cas[c.Spec.CARef.Name]
	if !ok {
		return fmt.Errorf("baseline: no CA %s", c.Spec.CARef.Name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: c.Spec.CommonName}, DNSNames: c.Spec.AltNames,
	}, key)
	if err != nil {
		return err
	}
	resp, err := b.vault.Logical().WriteWithContext(ctx, ca.signPath, map[string]any{
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		"ttl": c.Spec.TTL, "common_name": c.Spec.CommonName, "alt_names": strings.Join(c.Spec.AltNames, ","),
	})
	if err != nil {
		return fmt.Errorf("baseline sign %s: %w", c.Name, err)
	}
	leafPEM, _ := resp.Data["certificate"].(string)
	chain := leafPEM
	if ic, ok := resp.Data["issuing_ca"].(string); ok {
		chain = strings.TrimSpace(leafPEM) + "\n" + ic
	}
	leaf, err := contract.ParseCertificate([]byte(leafPEM))
	if err != nil {
		return fmt.Errorf("baseline: certificate from Vault for %s: %w", c.Name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	_, err = b.kube.CoreV1().Secrets(c.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Spec.SecretName},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       []byte(chain),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
			contract.TrustKey:       []byte(ca.rootPEM),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("baseline secret %s: %w", c.Name, err)
	}
	c = c.DeepCopy()
	nb, na := metav1.NewTime(leaf.NotBefore), metav1.NewTime(leaf.NotAfter)
	c.Status = v1alpha1.CertificateStatus{
		ObservedGeneration: c.Generation,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Issued",
			Message: "baseline", ObservedGeneration: c.Generation, LastTransitionTime: metav1.Now()}},
		NotBefore: &nb, NotAfter: &na, SerialNumber: contract.Serial(leaf.SerialNumber),
	}
	if _, err := b.client.ClusterpkiV1alpha1().Certificates(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("baseline status %s: %w", c.Name, err)
	}
	return nil
}

// latencyStats summarises a set of create→Ready latencies.
type latencyStats struct {
	Count          int     `json:"count"`
	DurationS      float64 `json:"durationSeconds"`
	ThroughputPerS float64 `json:"throughputPerSecond"`
	P50S           float64 `json:"p50Seconds"`
	P95S           float64 `json:"p95Seconds"`
	P99S           float64 `json:"p99Seconds"`
	MaxS           float64 `json:"maxSeconds"`
	// Latencies and ReadyAt (seconds from the first create) feed the chart.
	Latencies []float64 `json:"-"`
	ReadyAt   []float64 `json:"-"`
}

func summarize(start time.Time, lat []time.Duration, at []time.Time) latencyStats {
	s := latencyStats{Count: len(lat)}
	if len(lat) == 0 {
		return s
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	q := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return lat[i].Seconds()
	}
	s.P50S, s.P95S, s.P99S, s.MaxS = q(0.50), q(0.95), q(0.99), lat[len(lat)-1].Seconds()
	s.DurationS = at[len(at)-1].Sub(start).Seconds()
	if s.DurationS > 0 {
		s.ThroughputPerS = float64(len(lat)) / s.DurationS
	}
	for _, l := range lat {
		s.Latencies = append(s.Latencies, l.Seconds())
	}
	for _, a := range at {
		s.ReadyAt = append(s.ReadyAt, a.Sub(start).Seconds())
	}
	return s
}
