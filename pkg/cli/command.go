package cli

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clusterpki/clusterpki/pkg/logging"
	"github.com/clusterpki/clusterpki/pkg/version"
)

// NewRootCommand returns the command of the operator called name: it parses opts' flags and
// extraFlags (when not nil) from the command line and the environment, answers --version,
// validates opts, sets up logging, and calls run with a context cancelled on SIGINT or SIGTERM.
func NewRootCommand(name, short, long string, opts *Options, extraFlags func(*pflag.FlagSet), run func(ctx context.Context, log *logrus.Logger) error) *cobra.Command {
	if opts.LeaderElectionID == "" {
		opts.LeaderElectionID = name
	}
	cmd := &cobra.Command{
		Use:     name,
		Short:   short,
		Long:    long,
		Args:    cobra.NoArgs,
		Version: version.String(name),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := BindEnv(cmd, EnvPrefix); err != nil {
				return err
			}
			opts.TokenFromEnv()
			return opts.Validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// From here on a failure is not a usage mistake, and run logs it itself.
			cmd.SilenceUsage = true
			cmd.SilenceErrors = true
			log, err := logging.Setup(opts.LogFormat, opts.LogLevel, cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("set up logging: %w", err)
			}
			log.WithFields(logrus.Fields{"version": version.Version, "commit": version.Commit}).Infof("starting %s", name)

			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := run(ctx, log); err != nil {
				log.WithError(err).Error("exiting")
				return err
			}
			log.Info("stopped")
			return nil
		},
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	opts.AddFlags(cmd.Flags())
	if extraFlags != nil {
		extraFlags(cmd.Flags())
	}
	DescribeEnv(cmd.Flags(), EnvPrefix)
	return cmd
}
