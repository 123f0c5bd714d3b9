// Package cmd is the ca-operator's command line.
package cmd

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/ca-operator/caoperator"
	"github.com/clusterpki/clusterpki/pkg/cli"
	"github.com/clusterpki/clusterpki/pkg/operator"
)

const long = `ca-operator keeps, for every CertificateAuthority, a two-level CA in Vault: a root mount
(<prefix>/<namespace>/<clusterID>/root) whose key never leaves Vault and signs only an issuing
CA in the issuing mount (<prefix>/<namespace>/<clusterID>/issuing), whose roles sign leaf
certificates. It rotates the issuing CA before it expires, repairs drift, publishes the root in
ConfigMap <name>-ca and reports readiness in status.

Its Vault policy (deploy/vault/ca-operator.hcl) names --mount-prefix: change both together.

Every flag can also be set by an environment variable CLUSTERPKI_<FLAG> (upper case, dashes
as underscores), e.g. CLUSTERPKI_VAULT_ADDR.`

// NewCommand returns the ca-operator command.
func NewCommand() *cobra.Command {
	opts := cli.NewOptions()
	vaultPublicAddr := ""
	namespace := ""
	extra := func(fs *pflag.FlagSet) {
		fs.StringVar(&vaultPublicAddr, "vault-public-addr", vaultPublicAddr, "Vault address written into certificates' issuing-certificate and CRL URLs (default --vault-addr).")
		fs.StringVar(&namespace, "namespace", namespace, "Watch only this namespace (default all namespaces).")
	}
	return cli.NewRootCommand(caoperator.Component, "Provision per-cluster certificate authorities in Vault", long, opts, extra,
		func(ctx context.Context, log *logrus.Logger) error {
			if vaultPublicAddr == "" {
				vaultPublicAddr = opts.Vault.Addr
			}
			return operator.Run(ctx, log, opts, caoperator.Component, func(ctx context.Context, deps operator.Deps) (operator.Runnable, error) {
				op, err := caoperator.New(caoperator.Config{
					RESTConfig:       deps.RESTConfig,
					Vault:            deps.Vault,
					Recorder:         deps.NewEventRecorder(clusterpkischeme.Scheme),
					MountPrefix:      opts.MountPrefix,
					VaultPublicAddr:  vaultPublicAddr,
					Namespace:        namespace,
					Resync:           opts.ResyncPeriod,
					FinalizerTimeout: opts.FinalizerTimeout,
					Log:              deps.Log,
				})
				if err != nil {
					return nil, fmt.Errorf("ca-operator: %w", err)
				}
				return op, nil
			})
		})
}
