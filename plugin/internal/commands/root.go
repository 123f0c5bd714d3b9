// Package commands is the kubectl-clusterpki command tree: status, inspect, why, renew,
// rotate-issuer and trust, each reading the same API objects the operators write.
package commands

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
)

// Execute runs the command line args, writing to out and errOut, and returns the exit code.
func Execute(args []string, out, errOut io.Writer) int {
	cmd := NewRoot(out, errOut)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(errOut, "error:", err)
		return 1
	}
	return 0
}

// options are what every subcommand shares: how to reach the cluster, which namespace, and how
// to print.
type options struct {
	out, errOut   io.Writer
	loading       *clientcmd.ClientConfigLoadingRules
	overrides     *clientcmd.ConfigOverrides
	allNamespaces bool
	output        string
	// now is the clock for "expires in" and "renewing soon"; tests fix it.
	now func() time.Time

	kube      kubernetes.Interface
	pki       versioned.Interface
	namespace string
}

// NewRoot returns the kubectl-clusterpki command with its subcommands.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	o := &options{
		out: out, errOut: errOut,
		loading:   clientcmd.NewDefaultClientConfigLoadingRules(),
		overrides: &clientcmd.ConfigOverrides{},
		now:       time.Now,
	}
	cmd := &cobra.Command{
		Use:   "kubectl-clusterpki",
		Short: "Look at and act on clusterpki's CertificateAuthorities and Certificates",
		Long: `kubectl clusterpki shows what the ca-operator and cert-operator did and why, and asks them
to act: status of every CA and its Certificates, a decoded certificate, the reason chain of one
that is not Ready, renewals and issuing-CA rotations, and the published trust bundle.`,
		// kubectl runs kubectl-clusterpki as `kubectl clusterpki`; help and usage say so.
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl clusterpki"},
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch o.output {
			case "", "table", "json", "yaml":
			default:
				return fmt.Errorf("--output %q: want table, json or yaml", o.output)
			}
			return o.connect()
		},
	}
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config).")
	clientcmd.BindOverrideFlags(o.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
	fs.StringVarP(&o.output, "output", "o", "table", "Output format: table, json or yaml.")
	cmd.AddCommand(newStatus(o), newInspect(o), newWhy(o), newRenew(o), newRotateIssuer(o), newRotateRoot(o), newTrust(o))
	return cmd
}

// connect builds the clients and resolves the namespace from the flags and kubeconfig.
func (o *options) connect() error {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(o.loading, o.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return err
	}
	if o.namespace, _, err = cc.Namespace(); err != nil {
		return err
	}
	if o.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	o.pki, err = versioned.NewForConfig(cfg)
	return err
}

// listNamespace is the namespace a list reads: all with -A, else the current one.
func (o *options) listNamespace() string {
	if o.allNamespaces {
		return ""
	}
	return o.namespace
}
