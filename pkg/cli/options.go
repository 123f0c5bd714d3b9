// Package cli holds the command-line options both operators share, their environment-variable
// fallbacks, and the root cobra command that sets up logging and signal handling.
package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/logging"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// EnvPrefix prefixes the environment variable of every flag: --vault-addr is CLUSTERPKI_VAULT_ADDR.
const EnvPrefix = "CLUSTERPKI"

// DefaultNamespace is the leader election namespace when POD_NAMESPACE is unset.
const DefaultNamespace = "clusterpki-system"

// Options are the settings both operators share.
type Options struct {
	Kubeconfig   string
	KubeAPIQPS   float32
	KubeAPIBurst int
	Workers      int
	MetricsAddr  string
	// Profiling serves Go's profiles under /debug/pprof/ on the metrics address.
	Profiling               bool
	LeaderElect             bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	LogFormat               string
	LogLevel                string
	ResyncPeriod            time.Duration
	// FinalizerTimeout is how long after an object's deletion its finalizer's Vault work is
	// retried before the object is let go with a Warning.
	FinalizerTimeout time.Duration
	// MountPrefix is the Vault path under which every CA's mounts live (pkg/pkipath).
	MountPrefix string
	Vault       vault.Config
}

// NewOptions returns Options with every default filled in.
func NewOptions() *Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Options{
		// No client-side limit: the API server's Priority and Fairness shares its capacity
		// among clients (as controller-runtime has done by default since #3119, on SIG API
		// Machinery's advice). A token bucket here only made a burst of new Certificates wait
		// in the operator while the API server had room (issue 12).
		KubeAPIQPS:              -1,
		KubeAPIBurst:            400,
		Workers:                 8,
		MetricsAddr:             ":8080",
		LeaderElect:             true,
		LeaderElectionNamespace: ns,
		LogFormat:               "text",
		LogLevel:                "info",
		ResyncPeriod:            10 * time.Minute,
		MountPrefix:             pkipath.DefaultPrefix,
		FinalizerTimeout:        kube.DefaultFinalizerTimeout,
		Vault: vault.Config{
			Auth:                vault.AuthKubernetes,
			KubernetesMountPath: vault.DefaultKubernetesMountPath,
			KubernetesTokenFile: vault.DefaultKubernetesTokenFile,
			AppRoleMountPath:    vault.DefaultAppRoleMountPath,
			Timeout:             vault.DefaultTimeout,
			MaxRetries:          vault.DefaultMaxRetries,
		},
	}
}

// AddFlags registers the shared flags on fs, with o's current values as defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig file; empty means in-cluster config (or $KUBECONFIG when set).")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second the operator allows itself to the Kubernetes API server; -1 means no client-side limit, leaving it to the API server's Priority and Fairness.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries allowed to the Kubernetes API server when --kube-api-qps sets a limit.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Objects reconciled concurrently by each controller.")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, `Address serving /metrics, /healthz and /readyz; "0" disables it.`)
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve Go's CPU, heap, allocation, lock and scheduling-wait profiles under /debug/pprof/ on --metrics-addr (for diagnosis; off in the shipped Deployments).")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader through a Lease so only one replica reconciles.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader election Lease (default $POD_NAMESPACE).")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the leader election Lease.")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "Log format: text or json.")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "Log level: trace, debug, info, warning or error.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "How often informers resync, rechecking every object against Vault.")
	fs.StringVar(&o.MountPrefix, "mount-prefix", o.MountPrefix, "Vault path under which every CA's mounts live: <prefix>/<namespace>/<clusterID>/root and .../issuing. "+
		"The shipped Vault policies (deploy/vault/*.hcl) name this prefix: change both together.")
	fs.DurationVar(&o.FinalizerTimeout, "finalizer-timeout", o.FinalizerTimeout, "How long after an object's deletion its Vault clean-up (revocation, unmounting) is retried before the finalizer is released with a Warning event naming what was left undone.")

	v := &o.Vault
	fs.StringVar(&v.Addr, "vault-addr", v.Addr, "Vault address, e.g. https://vault:8200 (also $VAULT_ADDR).")
	fs.StringVar(&v.CACert, "vault-ca-file", v.CACert, "PEM file of the CAs that sign Vault's certificate (also $VAULT_CACERT).")
	fs.StringVar(&v.TLSServerName, "vault-tls-server-name", v.TLSServerName, "Name to verify in Vault's certificate, when it differs from the address.")
	fs.BoolVar(&v.Insecure, "vault-skip-verify", v.Insecure, "Do not verify Vault's certificate (development only).")
	fs.StringVar(&v.Auth, "vault-auth", v.Auth, "Vault auth method: token, kubernetes or approle.")
	// No flag takes the token itself: a command line shows in ps and in the pod spec.
	fs.StringVar(&v.TokenFile, "vault-token-file", v.TokenFile, "File holding the Vault token for --vault-auth=token, read again at each login (or put the token in $"+EnvName(EnvPrefix, "vault-token")+" or $VAULT_TOKEN).")
	fs.StringVar(&v.KubernetesRole, "vault-kubernetes-role", v.KubernetesRole, "Vault role for --vault-auth=kubernetes.")
	fs.StringVar(&v.KubernetesMountPath, "vault-kubernetes-mount", v.KubernetesMountPath, "Mount path of Vault's Kubernetes auth method.")
	fs.StringVar(&v.KubernetesTokenFile, "vault-kubernetes-token-file", v.KubernetesTokenFile, "ServiceAccount token presented to Vault's Kubernetes auth method.")
	fs.StringVar(&v.AppRoleMountPath, "vault-approle-mount", v.AppRoleMountPath, "Mount path of Vault's AppRole auth method.")
	fs.StringVar(&v.AppRoleRoleID, "vault-approle-role-id", v.AppRoleRoleID, "AppRole role id for --vault-auth=approle.")
	fs.StringVar(&v.AppRoleSecretIDFile, "vault-approle-secret-id-file", v.AppRoleSecretIDFile, "File holding the AppRole secret id, read again at each login.")
	fs.DurationVar(&v.Timeout, "vault-timeout", v.Timeout, "Timeout of one request to Vault.")
}

// TokenFromEnv sets the Vault token from $CLUSTERPKI_VAULT_TOKEN, or else $VAULT_TOKEN, when
// either is set: besides --vault-token-file, the environment is the only place a token is
// read from.
func (o *Options) TokenFromEnv() {
	for _, name := range []string{EnvName(EnvPrefix, "vault-token"), "VAULT_TOKEN"} {
		if v := os.Getenv(name); v != "" {
			o.Vault.Token = v
			return
		}
	}
}

// Validate reports the first option that cannot work, naming its flag.
func (o *Options) Validate() error {
	var errs []error
	if o.KubeAPIQPS <= 0 && o.KubeAPIQPS != -1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive, or -1 for no client-side limit, got %v", o.KubeAPIQPS))
	}
	if o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.KubeAPIBurst))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers must be at least 1, got %d", o.Workers))
	}
	if o.LeaderElect && (o.LeaderElectionNamespace == "" || o.LeaderElectionID == "") {
		errs = append(errs, errors.New("--leader-elect needs --leader-election-namespace and --leader-election-id"))
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", o.LogFormat))
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level must be trace, debug, info, warning or error, not %q", o.LogLevel))
	}
	if o.FinalizerTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--finalizer-timeout must be positive, got %s", o.FinalizerTimeout))
	}
	if o.ResyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("--resync-period must not be negative, got %s", o.ResyncPeriod))
	}
	if err := pkipath.ValidatePrefix(o.MountPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--mount-prefix: %w", err))
	}
	if err := o.Vault.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
