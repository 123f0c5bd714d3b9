// Package cmd is the cert-operator's command line.
package cmd

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
	"github.com/clusterpki/clusterpki/pkg/cli"
	"github.com/clusterpki/clusterpki/pkg/metrics"
	"github.com/clusterpki/clusterpki/pkg/operator"
)

const long = `cert-operator issues every Certificate from its CertificateAuthority's issuing CA in Vault
into a kubernetes.io/tls Secret: it makes the private key itself, sends Vault only a CSR,
renews before expiry, and re-issues when the spec, the Secret or the CA's root changes.
It waits for the CA through Kubernetes objects only.

Every flag can also be set by an environment variable CLUSTERPKI_<FLAG> (upper case, dashes
as underscores), e.g. CLUSTERPKI_VAULT_ADDR.`

// NewCommand returns the cert-operator command.
func NewCommand() *cobra.Command {
	opts := cli.NewOptions()
	namespace := ""
	maxBackoff := 5 * time.Minute
	extra := func(fs *pflag.FlagSet) {
		fs.StringVar(&namespace, "namespace", namespace, "Watch only this namespace (default all namespaces).")
		fs.DurationVar(&maxBackoff, "max-backoff", maxBackoff, "Longest wait between retries of a failing issuance.")
	}
	return cli.NewRootCommand("cert-operator", "Issue and renew certificates from per-cluster CAs in Vault", long, opts, extra,
		func(ctx context.Context, log *logrus.Logger) error {
			return operator.Run(ctx, log, opts, "cert-operator", func(ctx context.Context, deps operator.Deps) (operator.Runnable, error) {
				return &runnable{cfg: certoperator.Config{
					RESTConfig: deps.RESTConfig,
					Vault:      deps.Vault,
					Namespace:  namespace,
					Resync:     opts.ResyncPeriod,
					MaxBackoff: maxBackoff,
					Registry:   metrics.Registry,
					Log:        deps.Log,
				}}, nil
			})
		})
}

// runnable adapts certoperator.Run to the operator kit's Runnable.
type runnable struct {
	cfg   certoperator.Config
	ready atomic.Pointer[func() bool]
}

// Run runs the Certificate controller with workers workers until ctx is done.
func (r *runnable) Run(ctx context.Context, workers int) error {
	r.cfg.Workers = workers
	r.cfg.OnReady = func(ready func() bool) { r.ready.Store(&ready) }
	return certoperator.Run(ctx, r.cfg)
}

// Ready reports whether the controller's caches have synced and its workers run.
func (r *runnable) Ready() error {
	if f := r.ready.Load(); f != nil && (*f)() {
		return nil
	}
	return errors.New("certificate controller not running yet")
}
