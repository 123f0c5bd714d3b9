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
(<prefix><clusterID>-root) whose key never leaves Vault and signs only an issuing CA in the
issuing mount (<prefix><clusterID>), whose roles sign leaf certificates. It rotates the
issuing CA before it expires, repairs drift, publishes the root in ConfigMap <name>-ca and
reports readiness in status.

Every flag can also be set by an environment variable CLUSTERPKI_<FLAG> (upper case, dashes
as underscores), e.g. CLUSTERPKI_VAULT_ADDR.`

// NewCommand returns the ca-operator command.
func NewCommand() *cobra.Command {
	opts := cli.NewOptions()
	mountPrefix := "pki-"
	vaultPublicAddr := ""
	namespace := ""
	extra := func(fs *pflag.FlagSet) {
		fs.StringVar(&mountPrefix, "mount-prefix", mountPrefix, "Prefix of the Vault mounts: <prefix><clusterID>-root and <prefix><clusterID>. The Vault policy must match it.")
		fs.StringVar(&vaultPublicAddr, "vault-public-addr", vaultPublicAddr, "Vault address written into certificates' issuing-certificate and CRL URLs (default --vault-addr).")
		fs.StringVar(&namespace, "namespace", namespace, "Watch only this namespace (default all namespaces).")
	}
	return cli.NewRootCommand("ca-operator", "Provision per-cluster certificate authorities in Vault", long, opts, extra,
		func(ctx context.Context, log *logrus.Logger) error {
			if vaultPublicAddr == "" {
				vaultPublicAddr = opts.Vault.Addr
			}
			return operator.Run(ctx, log, opts, "ca-operator", func(ctx context.Context, deps operator.Deps) (operator.Runnable, error) {
				op, err := caoperator.New(caoperator.Config{
					RESTConfig:      deps.RESTConfig,
					Vault:           deps.Vault,
					Recorder:        deps.NewEventRecorder(clusterpkischeme.Scheme),
					MountPrefix:     mountPrefix,
					VaultPublicAddr: vaultPublicAddr,
					Namespace:       namespace,
					Resync:          opts.ResyncPeriod,
					Log:             deps.Log,
				})
				if err != nil {
					return nil, fmt.Errorf("ca-operator: %w", err)
				}
				return op, nil
			})
		})
}
