// Package operator is the start-up sequence both binaries share, so that each main only builds
// its controllers: Kubernetes clients, Vault login and token renewal, the metrics and health
// server, leader election, and running the controllers while this replica leads.
package operator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/clusterpki/clusterpki/pkg/cli"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/leader"
	"github.com/clusterpki/clusterpki/pkg/server"
	"github.com/clusterpki/clusterpki/pkg/vault"
	"github.com/clusterpki/clusterpki/pkg/version"
)

// Runnable is what an operator's setup returns: its controllers, run together.
type Runnable interface {
	// Run starts informers and controllers with workers workers each and blocks until ctx is done.
	Run(ctx context.Context, workers int) error
	// Ready returns nil once caches have synced and the controllers are running.
	Ready() error
}

// Deps are what setup needs to build controllers.
type Deps struct {
	RESTConfig *rest.Config
	Kube       kube.Client
	Vault      *vault.Client
	Log        *logrus.Logger
	Options    *cli.Options
	// NewEventRecorder returns a recorder for objects whose kinds scheme knows; it is flushed
	// and stopped when Run returns.
	NewEventRecorder func(scheme *runtime.Scheme) record.EventRecorder
}

// Run starts the operator called name with opts and blocks until ctx is cancelled or something
// fails: setup is called once this replica leads, with a context that ends when leadership does.
func Run(ctx context.Context, log *logrus.Logger, opts *cli.Options, name string, setup func(ctx context.Context, deps Deps) (Runnable, error)) error {
	restCfg, err := kube.RESTConfig(opts.Kubeconfig, opts.KubeAPIQPS, opts.KubeAPIBurst)
	if err != nil {
		return err
	}
	restCfg = rest.AddUserAgent(restCfg, name+"/"+version.Version)
	kubeClient, err := kube.NewClient(restCfg)
	if err != nil {
		return err
	}

	vaultClient, err := vault.New(ctx, opts.Vault, log)
	if err != nil {
		return err
	}

	identity, err := identity()
	if err != nil {
		return err
	}

	var recorders recorderSet
	defer recorders.stopAll()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { vaultClient.Start(ctx) })

	// running is the Runnable while this replica leads; a standby replica is ready too, so
	// that rolling out several replicas does not wait for leadership.
	var running atomic.Pointer[Runnable]
	checks := map[string]func() error{
		"vault-token": vaultClient.TokenValid,
		"controllers": func() error {
			if r := running.Load(); r != nil {
				return (*r).Ready()
			}
			return nil
		},
	}
	serverErr := make(chan error, 1)
	wg.Go(func() {
		err := server.Serve(ctx, opts.MetricsAddr, checks, log, server.WithProfiling(opts.Profiling))
		if err != nil {
			cancel() // without metrics and probes the pod is unmanageable: stop
		}
		serverErr <- err
	})

	var runErr error
	leaderErr := leader.Run(ctx, leader.Config{
		Enabled:   opts.LeaderElect,
		Namespace: opts.LeaderElectionNamespace,
		Name:      opts.LeaderElectionID,
		Identity:  identity,
		Client:    kubeClient,
		Log:       log,
	}, func(ctx context.Context) {
		r, err := setup(ctx, Deps{
			RESTConfig: restCfg,
			Kube:       kubeClient,
			Vault:      vaultClient,
			Log:        log,
			Options:    opts,
			NewEventRecorder: func(scheme *runtime.Scheme) record.EventRecorder {
				return recorders.add(kube.NewEventRecorder(kubeClient, scheme, name))
			},
		})
		if err != nil {
			runErr = fmt.Errorf("set up controllers: %w", err)
			return
		}
		running.Store(&r)
		defer running.Store(nil)
		if err := r.Run(ctx, opts.Workers); err != nil {
			runErr = fmt.Errorf("run controllers: %w", err)
		}
	})

	cancel()
	wg.Wait()
	return errors.Join(runErr, leaderErr, <-serverErr)
}

// identity names this replica in the Lease: the pod name (hostname) plus a unique suffix, so a
// restarted pod of the same name is never mistaken for its predecessor.
func identity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("read hostname for leader election identity: %w", err)
	}
	return host + "_" + string(uuid.NewUUID()), nil
}

// recorderSet keeps the stop functions of the event recorders made during a run.
type recorderSet struct {
	mu    sync.Mutex
	stops []func()
}

// add remembers stop and returns recorder.
func (s *recorderSet) add(recorder record.EventRecorder, stop func()) record.EventRecorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, stop)
	return recorder
}

// stopAll stops every recorder; each writes the events already queued before it stops.
func (s *recorderSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, stop := range s.stops {
		stop()
	}
}
