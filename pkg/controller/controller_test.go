package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// recorder is a SyncFunc that keeps the keys it saw and answers with results in turn.
type recorder struct {
	mu      sync.Mutex
	keys    []cache.ObjectName
	results []error // the i-th sync returns results[i]; nil once they run out
	synced  chan cache.ObjectName
}

func newRecorder(results ...error) *recorder {
	return &recorder{results: results, synced: make(chan cache.ObjectName, 100)}
}

func (r *recorder) sync(_ context.Context, key cache.ObjectName) error {
	r.mu.Lock()
	var err error
	if n := len(r.keys); n < len(r.results) {
		err = r.results[n]
	}
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	r.synced <- key
	return err
}

// next waits for the next sync and returns its key.
func (r *recorder) next(t *testing.T) cache.ObjectName {
	t.Helper()
	select {
	case key := <-r.synced:
		return key
	case <-time.After(5 * time.Second):
		t.Fatal("no sync within 5s")
		return cache.ObjectName{}
	}
}

// quietLogger discards everything.
func quietLogger() *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return log
}

// configMap builds a ConfigMap at a resourceVersion.
func configMap(name, resourceVersion string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, ResourceVersion: resourceVersion}}
}

// start runs c with one worker until the test ends.
func start(t *testing.T, c *Controller, hasSynced ...cache.InformerSynced) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 1, hasSynced...) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
}

func TestRunSyncsInformerObjects(t *testing.T) {
	client := fake.NewClientset(configMap("web", "1"))
	factory := informers.NewSharedInformerFactory(client, 0)
	cms := factory.Core().V1().ConfigMaps()

	r := newRecorder()
	c := New("test", r.sync, WithLogger(quietLogger()))
	_, err := cms.Informer().AddEventHandler(c.EventHandler(nil, IgnoreResyncs))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()

	start(t, c, cms.Informer().HasSynced)
	assert.Equal(t, cache.NewObjectName("team-a", "web"), r.next(t))
	assert.Eventually(t, func() bool { return c.Ready() == nil }, 5*time.Second, 10*time.Millisecond)
}

func TestRunFailsWhenCachesNeverSync(t *testing.T) {
	c := New("test", newRecorder().sync, WithLogger(quietLogger()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Run(ctx, 1, func() bool { return false })
	assert.EqualError(t, err, "controller test: caches did not sync before shutdown")
	assert.EqualError(t, c.Ready(), "controller test: caches not synced or workers not running")
}

func TestSyncsCountInTheirOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	r := newRecorder()
	c := New("counted", r.sync, WithLogger(quietLogger()), WithMetrics(m))
	start(t, c)
	c.EnqueueKey(cache.NewObjectName("team-a", "web"))
	r.next(t)
	assert.Eventually(t, func() bool {
		return testutil.CollectAndCount(m.syncDuration) == 1 && testutil.ToFloat64(m.queueAdds.WithLabelValues("counted")) == 1
	}, time.Second, time.Millisecond)
}

func TestWorkerRetriesErrorsWithBackoff(t *testing.T) {
	r := newRecorder(errors.New("vault down"), fmt.Errorf("sign: %w", errors.New("vault down")))
	c := New("test", r.sync, WithLogger(quietLogger()), WithBackoff(time.Millisecond, 10*time.Millisecond))
	start(t, c)

	key := cache.NewObjectName("team-a", "web")
	c.EnqueueKey(key)
	for range 3 {
		assert.Equal(t, key, r.next(t))
	}
	// The third sync succeeded, so the key's backoff is forgotten.
	assert.Eventually(t, func() bool { return c.queue.NumRequeues(key) == 0 }, time.Second, time.Millisecond)
}

func TestWorkerRequeuesAfterTheRequestedDelay(t *testing.T) {
	r := newRecorder(fmt.Errorf("renewal due: %w", RequeueAfter(50*time.Millisecond)))
	c := New("test", r.sync, WithLogger(quietLogger()))
	start(t, c)

	key := cache.NewObjectName("team-a", "web")
	c.EnqueueKey(key)
	first := time.Now()
	r.next(t)
	r.next(t)
	assert.GreaterOrEqual(t, time.Since(first), 50*time.Millisecond)
	assert.Equal(t, 0, c.queue.NumRequeues(key), "a requested requeue is not a failure")
}

func TestEnqueue(t *testing.T) {
	tests := map[string]struct {
		obj     any
		wantKey *cache.ObjectName // nil: nothing queued
	}{
		"an object is queued by namespace and name": {
			obj:     configMap("web", "1"),
			wantKey: &cache.ObjectName{Namespace: "team-a", Name: "web"},
		},
		"a tombstone is queued by its key": {
			obj:     cache.DeletedFinalStateUnknown{Key: "team-a/gone", Obj: configMap("gone", "1")},
			wantKey: &cache.ObjectName{Namespace: "team-a", Name: "gone"},
		},
		"something without metadata is dropped": {
			obj: "not an object",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := New("test", newRecorder().sync, WithLogger(quietLogger()))
			defer c.queue.ShutDown()
			c.Enqueue(tc.obj)
			if tc.wantKey == nil {
				assert.Equal(t, 0, c.queue.Len())
				return
			}
			require.Equal(t, 1, c.queue.Len())
			key, _ := c.queue.Get()
			assert.Equal(t, *tc.wantKey, key)
		})
	}
}

func TestEventHandlerUpdates(t *testing.T) {
	isWeb := func(obj any) bool { return obj.(*corev1.ConfigMap).Name == "web" }
	tests := map[string]struct {
		resync    ResyncPolicy
		old, new  *corev1.ConfigMap
		wantQueue int
	}{
		"a changed object is queued":                   {resync: IgnoreResyncs, old: configMap("web", "1"), new: configMap("web", "2"), wantQueue: 1},
		"a resync is ignored by default":               {resync: IgnoreResyncs, old: configMap("web", "1"), new: configMap("web", "1"), wantQueue: 0},
		"a resync is queued when resyncs matter":       {resync: HandleResyncs, old: configMap("web", "1"), new: configMap("web", "1"), wantQueue: 1},
		"an object the filter refuses is never queued": {resync: HandleResyncs, old: configMap("db", "1"), new: configMap("db", "2"), wantQueue: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := New("test", newRecorder().sync, WithLogger(quietLogger()))
			defer c.queue.ShutDown()
			c.EventHandler(isWeb, tc.resync).OnUpdate(tc.old, tc.new)
			assert.Equal(t, tc.wantQueue, c.queue.Len())
		})
	}
}

func TestEventHandlerUnwrapsTombstones(t *testing.T) {
	c := New("test", newRecorder().sync, WithLogger(quietLogger()))
	defer c.queue.ShutDown()
	var seen any
	c.MappedEventHandler(func(obj any) []cache.ObjectName {
		seen = obj
		return []cache.ObjectName{cache.NewObjectName("team-a", "owner")}
	}, IgnoreResyncs).OnDelete(cache.DeletedFinalStateUnknown{Key: "team-a/web", Obj: configMap("web", "1")})

	assert.Equal(t, configMap("web", "1"), seen)
	key, _ := c.queue.Get()
	assert.Equal(t, cache.NewObjectName("team-a", "owner"), key)
}
