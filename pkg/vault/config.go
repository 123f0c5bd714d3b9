// Package vault is the Vault client both operators use: it logs in with the operator's own
// identity (token, Kubernetes or AppRole auth), keeps the token alive in the background, logs
// in again when the token expires (never once per request), retries idempotent calls, and
// measures every request. It never logs a token, a secret id or response data.
package vault

import (
	"errors"
	"fmt"
	"time"
)

// Auth methods accepted in Config.Auth.
const (
	AuthToken      = "token"
	AuthKubernetes = "kubernetes"
	AuthAppRole    = "approle"
)

// Defaults applied by Config.SetDefaults.
const (
	DefaultKubernetesMountPath = "kubernetes"
	DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultAppRoleMountPath    = "approle"
	DefaultTimeout             = 30 * time.Second
	DefaultMaxRetries          = 2
)

// Config says where Vault is and how to log in to it.
type Config struct {
	// Addr is Vault's URL, e.g. https://vault.example:8200.
	Addr string
	// CACert is a PEM file of the CAs that sign Vault's serving certificate (empty: system roots).
	CACert string
	// TLSServerName overrides the name checked in Vault's certificate.
	TLSServerName string
	// Insecure skips verifying Vault's certificate; for development only.
	Insecure bool

	// Auth is AuthToken, AuthKubernetes or AuthAppRole.
	Auth string

	// Token, or else TokenFile (read again at each login), for AuthToken.
	Token     string
	TokenFile string

	// KubernetesRole is the Vault role logged in to with the ServiceAccount token in
	// KubernetesTokenFile, at auth/<KubernetesMountPath>/login.
	KubernetesRole      string
	KubernetesMountPath string
	KubernetesTokenFile string

	// AppRoleRoleID and AppRoleSecretID (or AppRoleSecretIDFile, read again at each login) log
	// in at auth/<AppRoleMountPath>/login.
	AppRoleMountPath    string
	AppRoleRoleID       string
	AppRoleSecretID     string
	AppRoleSecretIDFile string

	// Timeout bounds one HTTP request to Vault.
	Timeout time.Duration
	// MaxRetries is how often an idempotent request is retried after a 5xx or connection error.
	MaxRetries int

	// Metrics count the client's requests and logins (nil: NewMetrics(metrics.Registry), the
	// process's registry that /metrics serves). Not a flag.
	Metrics *Metrics
}

// SetDefaults fills in the mount paths, token file, timeout and retries left empty.
func (c *Config) SetDefaults() {
	if c.KubernetesMountPath == "" {
		c.KubernetesMountPath = DefaultKubernetesMountPath
	}
	if c.KubernetesTokenFile == "" {
		c.KubernetesTokenFile = DefaultKubernetesTokenFile
	}
	if c.AppRoleMountPath == "" {
		c.AppRoleMountPath = DefaultAppRoleMountPath
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
}

// Validate reports the first setting that cannot work, naming it as the command-line flag that
// sets it.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("--vault-addr is required")
	}
	switch c.Auth {
	case AuthToken:
		if c.Token == "" && c.TokenFile == "" {
			return errors.New("--vault-auth=token needs --vault-token-file or a token in $CLUSTERPKI_VAULT_TOKEN or $VAULT_TOKEN")
		}
	case AuthKubernetes:
		if c.KubernetesRole == "" {
			return errors.New("--vault-auth=kubernetes needs --vault-kubernetes-role")
		}
	case AuthAppRole:
		if c.AppRoleRoleID == "" {
			return errors.New("--vault-auth=approle needs --vault-approle-role-id")
		}
		if c.AppRoleSecretID == "" && c.AppRoleSecretIDFile == "" {
			return errors.New("--vault-auth=approle needs --vault-approle-secret-id-file")
		}
	default:
		return fmt.Errorf("--vault-auth must be token, kubernetes or approle, not %q", c.Auth)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("--vault-timeout must not be negative, got %s", c.Timeout)
	}
	return nil
}
