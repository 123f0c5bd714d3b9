// Package server is the one HTTP endpoint each operator exposes: Prometheus metrics, liveness
// and readiness.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// shutdownTimeout bounds how long in-flight requests get to finish after ctx is cancelled.
const shutdownTimeout = 5 * time.Second

// Option changes what the server serves.
type Option func(*settings)

type settings struct{ profiling bool }

// WithProfiling adds Go's profiles under /debug/pprof/ (CPU, heap, allocations, goroutines, and
// lock and scheduling waits, whose sampling it switches on): off by default, since a profile
// shows what the process does to anyone who can reach the port.
func WithProfiling(on bool) Option { return func(s *settings) { s.profiling = on } }

// Handler returns the mux serving /metrics from metrics.Registry, /healthz (ok while the
// process can answer) and /readyz (ok only when every check passes).
func Handler(checks map[string]func() error, opts ...Option) http.Handler {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	mux := http.NewServeMux()
	if set.profiling {
		// One sample per 10 µs blocked and one lock contention in 100: cheap enough to leave on
		// while profiling, and what the block and mutex profiles need to say anything.
		runtime.SetBlockProfileRate(10_000)
		runtime.SetMutexProfileFraction(100)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if failed := failedChecks(checks); len(failed) > 0 {
			http.Error(w, strings.Join(failed, "\n"), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	return mux
}

// failedChecks runs every check and returns one line per failure, "name: error", sorted by name.
func failedChecks(checks map[string]func() error) []string {
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	var failed []string
	for _, name := range names {
		if err := checks[name](); err != nil {
			failed = append(failed, name+": "+err.Error())
		}
	}
	return failed
}

// Serve listens on addr and serves Handler(checks) until ctx is cancelled, then shuts down
// gracefully; addr "" or "0" disables the server, and Serve just waits for ctx.
func Serve(ctx context.Context, addr string, checks map[string]func() error, log logrus.FieldLogger, opts ...Option) error {
	if addr == "" || addr == "0" {
		log.Info("metrics and health server disabled")
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, checks, log, opts...)
}

// ServeListener is Serve on an open listener, which it closes.
func ServeListener(ctx context.Context, ln net.Listener, checks map[string]func() error, log logrus.FieldLogger, opts ...Option) error {
	srv := &http.Server{
		Handler:           Handler(checks, opts...),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(ln) }()
	log.WithField("addr", ln.Addr().String()).Info("serving /metrics, /healthz and /readyz")

	select {
	case err := <-errs:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down server on %s: %w", ln.Addr(), err)
	}
	if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
