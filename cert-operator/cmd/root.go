// Package cmd is the cert-operator's command line.
package cmd

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
	"github.com/clusterpki/clusterpki/pkg/cli"
	"github.com/clusterpki/clusterpki/pkg/operator"
)

const long = `cert-operator issues, for every Certificate, a key pair made locally and signed by its
CertificateAuthority's issuing CA in Vault (the key never leaves the cluster), stores it in a
kubernetes.io/tls Secret, renews it before it expires, re-issues it when the spec, the Secret
or the CA's root changes, and revokes it as spec.revocationPolicy asks. During a CA's root
rotation it writes the CA's trust bundle (status.trustBundle) into every Secret's ca.crt in
place, then moves every certificate to the new root, one per --rotation-reissue-interval. Its Vault policy may
only sign and revoke on issuing mounts below --mount-prefix (deploy/vault/cert-operator.hcl):
change both together, and use the ca-operator's prefix. It computes every Vault path from the
Certificate's namespace, the CA's clusterID and the prefix, never from an object's status.

Every flag can also be set by an environment variable CLUSTERPKI_<FLAG> (upper case, dashes
as underscores), e.g. CLUSTERPKI_VAULT_ADDR.`

// NewCommand returns the cert-operator command.
func NewCommand() *cobra.Command {
	opts := cli.NewOptions()
	opts.Workers = certoperator.DefaultWorkers
	namespace := ""
	rotationInterval := certoperator.DefaultRotationReissueInterval
	extra := func(fs *pflag.FlagSet) {
		fs.StringVar(&namespace, "namespace", namespace, "Watch only this namespace (default all namespaces).")
		fs.DurationVar(&rotationInterval, "rotation-reissue-interval", rotationInterval,
			"During a CA's root rotation, the time between two re-issues onto the new root, across all CAs (0 for no bound). Writing the new trust bundle into ca.crt is never held back.")
	}
	return cli.NewRootCommand(certoperator.Component, "Issue and renew Certificates from Vault into Secrets", long, opts, extra,
		func(ctx context.Context, log *logrus.Logger) error {
			if rotationInterval < 0 {
				return fmt.Errorf("--rotation-reissue-interval must not be negative, got %s", rotationInterval)
			}
			return operator.Run(ctx, log, opts, certoperator.Component, func(ctx context.Context, deps operator.Deps) (operator.Runnable, error) {
				op, err := certoperator.New(certoperator.Config{
					RESTConfig:       deps.RESTConfig,
					Vault:            deps.Vault,
					Recorder:         deps.NewEventRecorder(clusterpkischeme.Scheme),
					Namespace:        namespace,
					MountPrefix:      opts.MountPrefix,
					Resync:           opts.ResyncPeriod,
					FinalizerTimeout: opts.FinalizerTimeout,
					Log:              deps.Log,

					RotationReissueInterval: rotationInterval,
				})
				if err != nil {
					return nil, fmt.Errorf("cert-operator: %w", err)
				}
				return op, nil
			})
		})
}
