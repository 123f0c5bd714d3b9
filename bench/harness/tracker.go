package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	cpinformers "github.com/clusterpki/clusterpki/apis/generated/informers/externalversions"
)

// certTimes is what the tracker saw of one Certificate.
type certTimes struct {
	created, ready, secret time.Time
	serial                 string
}

// done is when the Certificate was Ready with its Secret present, zero if not yet.
func (t *certTimes) done() time.Time {
	if t.ready.IsZero() || t.secret.IsZero() || t.created.IsZero() {
		return time.Time{}
	}
	if t.secret.After(t.ready) {
		return t.secret
	}
	return t.ready
}

// tracker watches Certificates and Secrets of one namespace and records, per Certificate,
// when it was first Ready (status) and when its Secret (<name>-tls) first existed.
type tracker struct {
	mu      sync.Mutex
	certs   map[string]*certTimes
	want    int
	nDone   int
	allDone chan struct{}
	stop    context.CancelFunc
}

// newTracker starts watching namespace ns; Certificates count once created() marks them.
func newTracker(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, ns string, want int) (*tracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &tracker{certs: map[string]*certTimes{}, want: want, allDone: make(chan struct{}), stop: cancel}
	cf := cpinformers.NewSharedInformerFactoryWithOptions(client, 0, cpinformers.WithNamespace(ns))
	kf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	ci := cf.Clusterpki().V1alpha1().Certificates().Informer()
	si := kf.Core().V1().Secrets().Informer()
	onCert := func(obj any) {
		c, ok := obj.(*v1alpha1.Certificate)
		if !ok || !isReady(c.Status.Conditions, c.Generation) {
			return
		}
		t.mark(c.Name, func(x *certTimes) {
			if x.ready.IsZero() {
				x.ready = time.Now()
				x.serial = c.Status.SerialNumber
			}
		})
	}
	onSecret := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || len(s.Data[corev1.TLSCertKey]) == 0 {
			return
		}
		name, ok := strings.CutSuffix(s.Name, "-tls")
		if !ok {
			return
		}
		t.mark(name, func(x *certTimes) {
			if x.secret.IsZero() {
				x.secret = time.Now()
			}
		})
	}
	if _, err := ci.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onCert, UpdateFunc: func(_, n any) { onCert(n) },
	}); err != nil {
		return nil, err
	}
	if _, err := si.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onSecret, UpdateFunc: func(_, n any) { onSecret(n) },
	}); err != nil {
		return nil, err
	}
	cf.Start(ctx.Done())
	kf.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), ci.HasSynced, si.HasSynced) {
		cancel()
		return nil, fmt.Errorf("tracker caches of %s did not sync", ns)
	}
	return t, nil
}

func isReady(conds []metav1.Condition, generation int64) bool {
	for _, c := range conds {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue && (c.ObservedGeneration == 0 || c.ObservedGeneration >= generation)
		}
	}
	return false
}

// created records that name was created at ts (the moment the create request was sent).
func (t *tracker) created(name string, ts time.Time) {
	t.mark(name, func(x *certTimes) { x.created = ts })
}

func (t *tracker) mark(name string, f func(*certTimes)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.certs[name]
	if x == nil {
		x = &certTimes{}
		t.certs[name] = x
	}
	was := !x.done().IsZero()
	f(x)
	if !was && !x.done().IsZero() {
		t.nDone++
		if t.nDone == t.want {
			close(t.allDone)
		}
	}
}

// wait waits until want Certificates are done, or limit passes.
func (t *tracker) wait(ctx context.Context, limit time.Duration) error {
	select {
	case <-t.allDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		t.mu.Lock()
		defer t.mu.Unlock()
		return fmt.Errorf("only %d of %d Certificates Ready with their Secret after %v", t.nDone, t.want, limit)
	}
}

// results returns the create→done latencies and the done times, both sorted by done time,
// and the first create time.
func (t *tracker) results() (start time.Time, lat []time.Duration, at []time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range t.certs {
		if x.created.IsZero() {
			continue
		}
		if start.IsZero() || x.created.Before(start) {
			start = x.created
		}
		if d := x.done(); !d.IsZero() {
			lat = append(lat, d.Sub(x.created))
			at = append(at, d)
		}
	}
	return start, lat, at
}
