// Package controller is the loop every clusterpki controller runs on: client-go informers feed
// object names into a typed rate-limited work queue, and workers hand each name to the
// controller's sync function, retrying failures with per-key exponential backoff.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// SyncFunc converges the object called key; a nil return means done, an error wrapping
// RequeueAfter means "look again after that delay", any other error means "retry with backoff".
type SyncFunc func(ctx context.Context, key cache.ObjectName) error

// Controller owns one work queue and the workers that drain it into a SyncFunc.
type Controller struct {
	name    string
	log     logrus.FieldLogger
	metrics *Metrics
	queue   workqueue.TypedRateLimitingInterface[cache.ObjectName]

	// syncHandler is a field so tests can replace it.
	syncHandler SyncFunc

	running atomic.Bool
}

// overallRetries and overallRetryBurst bound the retries of all keys together, so that many
// keys failing at once (Vault down) do not flood it when it returns.
const (
	overallRetries    rate.Limit = 50
	overallRetryBurst            = 300
)

// options collects what Option values change.
type options struct {
	baseBackoff time.Duration
	maxBackoff  time.Duration
	log         logrus.FieldLogger
	metrics     *Metrics
}

// Option changes how New builds a Controller.
type Option func(*options)

// WithBackoff sets the first retry delay of a failing key and the cap its exponential backoff
// grows to (defaults 500ms and 5 minutes).
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.baseBackoff, o.maxBackoff = base, max }
}

// WithMaxBackoff sets only the cap a failing key's exponential backoff grows to (default 5 minutes).
func WithMaxBackoff(max time.Duration) Option {
	return func(o *options) { o.maxBackoff = max }
}

// WithMetrics sets the metrics the controller reports into (default: NewMetrics of the
// process's registry, metrics.Registry).
func WithMetrics(m *Metrics) Option {
	return func(o *options) { o.metrics = m }
}

// WithLogger sets the logger the controller writes to (default logrus's standard logger).
func WithLogger(log logrus.FieldLogger) Option {
	return func(o *options) { o.log = log }
}

// New returns a Controller called name (used in logs, metrics and the queue's name) that
// passes each queued key to sync.
func New(name string, sync SyncFunc, opts ...Option) *Controller {
	o := options{
		baseBackoff: 500 * time.Millisecond,
		maxBackoff:  5 * time.Minute,
		log:         logrus.StandardLogger(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.metrics == nil {
		var err error
		if o.metrics, err = defaultMetrics(); err != nil {
			// Only another collector under these names gets here, a programming error: the
			// controller runs all the same, its metrics in a registry nobody serves.
			o.log.WithError(err).Error("cannot register the controller metrics")
			o.metrics, _ = NewMetrics(prometheus.NewRegistry())
		}
	}
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](o.baseBackoff, o.maxBackoff),
		&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: rate.NewLimiter(overallRetries, overallRetryBurst)},
	)
	return &Controller{
		name:    name,
		log:     o.log.WithField("controller", name),
		metrics: o.metrics,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{
			Name:            name,
			MetricsProvider: queueMetrics{o.metrics},
		}),
		syncHandler: sync,
	}
}

// Name returns the name the controller was built with.
func (c *Controller) Name() string { return c.name }

// Enqueue queues the name of obj, which may be an API object or a cache.DeletedFinalStateUnknown.
func (c *Controller) Enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		c.log.WithError(err).Warnf("cannot queue object of type %T", obj)
		return
	}
	c.queue.Add(key)
}

// EnqueueKey queues key.
func (c *Controller) EnqueueKey(key cache.ObjectName) {
	c.queue.Add(key)
}

// EnqueueAfter queues key once d has passed, for work due at a known time such as a renewal.
func (c *Controller) EnqueueAfter(key cache.ObjectName, d time.Duration) {
	c.queue.AddAfter(key, d)
}

// Ready returns nil once Run has seen its caches sync and its workers are running, and otherwise
// an error saying so, as a readiness check (pkg/operator's Runnable) wants it.
func (c *Controller) Ready() error {
	if !c.running.Load() {
		return fmt.Errorf("controller %s: caches not synced or workers not running", c.name)
	}
	return nil
}

// Run waits for the hasSynced caches, runs workers workers until ctx is done, then shuts the
// queue down and waits for the workers to finish their current key; a Controller runs once.
func (c *Controller) Run(ctx context.Context, workers int, hasSynced ...cache.InformerSynced) error {
	defer c.queue.ShutDown()
	if workers < 1 {
		return fmt.Errorf("controller %s: workers must be at least 1, got %d", c.name, workers)
	}

	c.log.Info("waiting for caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, hasSynced...) {
		return fmt.Errorf("controller %s: caches did not sync before shutdown", c.name)
	}

	c.log.WithField("workers", workers).Info("starting workers")
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	c.running.Store(true)

	<-ctx.Done()
	c.running.Store(false)
	c.log.Info("shutting down workers")
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// runWorker processes keys until the queue shuts down.
func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextItem(ctx) {
	}
}

// processNextItem syncs one key and decides whether and when it comes back; it returns false
// once the queue has shut down.
func (c *Controller) processNextItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)

	start := time.Now()
	err := c.syncHandler(ctx, key)
	duration := time.Since(start)
	log := c.log.WithFields(logrus.Fields{"key": key.String(), "duration": duration})

	after, requeue := requeueDelay(err)
	switch {
	case err == nil:
		c.queue.Forget(key)
		c.metrics.syncDuration.WithLabelValues(c.name, "success").Observe(duration.Seconds())
		log.Debug("synced")
	case requeue:
		// Time-based work: the key is not failing, so its backoff starts over.
		c.queue.Forget(key)
		c.queue.AddAfter(key, after)
		c.metrics.syncDuration.WithLabelValues(c.name, "requeue").Observe(duration.Seconds())
		log.WithField("after", after).Debug("synced, requeued")
	default:
		c.queue.AddRateLimited(key)
		c.metrics.syncDuration.WithLabelValues(c.name, "error").Observe(duration.Seconds())
		c.metrics.syncErrors.WithLabelValues(c.name).Inc()
		log.WithError(err).WithField("retries", c.queue.NumRequeues(key)).Warn("sync failed, will retry")
	}
	return true
}

// RequeueAfterError asks the controller to sync the key again after a delay; it is not a failure.
type RequeueAfterError struct {
	After time.Duration
}

// Error describes the requested delay.
func (e *RequeueAfterError) Error() string {
	return fmt.Sprintf("requeue after %s", e.After)
}

// RequeueAfter returns the error a SyncFunc returns (possibly wrapped) to be synced again after d.
func RequeueAfter(d time.Duration) error {
	return &RequeueAfterError{After: d}
}

// requeueDelay reports whether err asks for a delayed requeue, and the delay.
func requeueDelay(err error) (time.Duration, bool) {
	var r *RequeueAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}
