// Package leader runs an operator's controllers only while this replica holds a Lease, so that
// several replicas can be deployed and exactly one of them does the work.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/clusterpki/clusterpki/pkg/kube"
)

// Config says whether and how to elect a leader.
type Config struct {
	// Enabled turns leader election on; when off, Run simply calls run.
	Enabled bool
	// Namespace and Name locate the Lease.
	Namespace string
	Name      string
	// Identity names this replica in the Lease; the pod name is a good choice.
	Identity string
	Client   kube.Client
	// LeaseDuration, RenewDeadline and RetryPeriod default to 15s, 10s and 2s.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Log receives the election's progress; nil means logrus's standard logger.
	Log logrus.FieldLogger
	// Metrics report whether this replica leads (nil: NewMetrics of the process's registry).
	Metrics *Metrics
}

// ErrLeadershipLost is returned by Run when this replica stopped being the leader before ctx
// was cancelled; the process should exit so that it starts over as a candidate.
var ErrLeadershipLost = errors.New("leader election lost")

// Run calls run with a context that is cancelled when ctx is or when leadership is lost, once
// this replica is the leader (or at once when election is disabled); it returns
// ErrLeadershipLost if leadership was lost, and releases the Lease when ctx is cancelled.
func Run(ctx context.Context, cfg Config, run func(ctx context.Context)) error {
	if cfg.Metrics == nil {
		m, err := defaultMetrics()
		if err != nil {
			return err
		}
		cfg.Metrics = m
	}
	isLeader := cfg.Metrics.isLeader
	if !cfg.Enabled {
		isLeader.WithLabelValues(cfg.Name).Set(1)
		defer isLeader.WithLabelValues(cfg.Name).Set(0)
		run(ctx)
		return nil
	}
	if err := cfg.defaults(); err != nil {
		return err
	}

	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.Namespace, cfg.Name,
		cfg.Client.CoreV1(), cfg.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: cfg.Identity})
	if err != nil {
		return fmt.Errorf("create lease lock %s/%s: %w", cfg.Namespace, cfg.Name, err)
	}
	// A candidate reports 0 from the start, so "no replica leads" is visible, not just absent.
	isLeader.WithLabelValues(cfg.Name).Set(0)

	log := cfg.Log.WithFields(logrus.Fields{"lease": cfg.Namespace + "/" + cfg.Name, "identity": cfg.Identity})

	// electCtx is cancelled when run returns by itself, so the elector releases the Lease and
	// returns instead of renewing it for nobody.
	electCtx, cancelElect := context.WithCancel(ctx)
	defer cancelElect()
	var (
		runDone       = make(chan struct{})
		started       atomic.Bool
		returnedEarly atomic.Bool
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) {
				if !started.CompareAndSwap(false, true) {
					return // Run has already returned: leadership was lost before run began.
				}
				defer close(runDone)
				defer cancelElect()
				log.Info("became leader, starting controllers")
				isLeader.WithLabelValues(cfg.Name).Set(1)
				defer isLeader.WithLabelValues(cfg.Name).Set(0)
				run(leaderCtx)
				returnedEarly.Store(leaderCtx.Err() == nil)
			},
			OnStoppedLeading: func() {
				log.Info("stopped leading")
			},
			OnNewLeader: func(identity string) {
				if identity != cfg.Identity {
					log.WithField("leader", identity).Info("another replica is the leader")
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("create leader elector: %w", err)
	}

	log.Info("waiting to become leader")
	// The elector returns once electCtx is done or the Lease could not be renewed; either way
	// it has cancelled the context run got, but it does not wait for run, so wait here.
	elector.Run(electCtx)
	if !started.CompareAndSwap(false, true) {
		<-runDone
	}

	if ctx.Err() != nil || returnedEarly.Load() {
		return nil
	}
	return ErrLeadershipLost
}

// defaults fills in durations and the logger, and checks the fields that have no default.
func (c *Config) defaults() error {
	switch {
	case c.Client == nil:
		return errors.New("leader election: no Kubernetes client")
	case c.Namespace == "" || c.Name == "":
		return errors.New("leader election: the lease namespace and name must be set")
	case c.Identity == "":
		return errors.New("leader election: the identity must be set")
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 15 * time.Second
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = 10 * time.Second
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = logrus.StandardLogger()
	}
	return nil
}
