package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/sirupsen/logrus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// Client is a logged-in Vault client whose token is kept valid; it is safe for concurrent use.
type Client struct {
	cfg     Config
	log     logrus.FieldLogger
	metrics *Metrics

	// api retries 5xx and connection errors cfg.MaxRetries times; noRetry never retries, for
	// writes that must not happen twice. Both always carry the current token.
	api     *vaultapi.Client
	noRetry *vaultapi.Client

	// loginMu makes logins one at a time, so that many requests failing together on an
	// expired token cause one login, not one each.
	loginMu sync.Mutex
	// loggedIn receives a signal after every login, so that Start renews the new token.
	loggedIn chan struct{}

	mu     sync.RWMutex
	auth   *vaultapi.SecretAuth // the current login
	expiry time.Time            // zero: the token does not expire
	state  error                // non-nil: the token is known to be unusable
}

// New builds a client for cfg and logs in once; call Start to keep the token alive.
func New(ctx context.Context, cfg Config, log logrus.FieldLogger) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	apiCfg := vaultapi.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", apiCfg.Error)
	}
	apiCfg.Address = cfg.Addr
	apiCfg.Timeout = cfg.Timeout
	apiCfg.MaxRetries = cfg.MaxRetries
	// The default pool keeps GOMAXPROCS+1 idle connections per host: with more workers than
	// that calling Vault at once, most requests would open (and, over TLS, handshake) a new
	// connection and close it after one use.
	if t, ok := apiCfg.HttpClient.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = maxIdleConns
	}
	if err := apiCfg.ConfigureTLS(&vaultapi.TLSConfig{
		CACert:        cfg.CACert,
		TLSServerName: cfg.TLSServerName,
		Insecure:      cfg.Insecure,
	}); err != nil {
		return nil, fmt.Errorf("vault TLS config: %w", err)
	}
	api, err := vaultapi.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// NewClient picks up VAULT_TOKEN from the environment; only a login sets our token.
	api.ClearToken()
	noRetry, err := api.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	noRetry.SetMaxRetries(0)
	if cfg.Metrics == nil {
		if cfg.Metrics, err = NewMetrics(metrics.Registry); err != nil {
			return nil, err
		}
	}

	c := &Client{
		cfg:      cfg,
		log:      log.WithFields(logrus.Fields{"vault": cfg.Addr, "auth": cfg.Auth}),
		metrics:  cfg.Metrics,
		api:      api,
		noRetry:  noRetry,
		loggedIn: make(chan struct{}, 1),
	}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// maxIdleConns is how many idle connections to Vault are kept for reuse: more than any
// operator's workers.
const maxIdleConns = 128

// Raw returns the underlying client (with retries for idempotent calls), carrying the current
// token; calls made through it are not measured and do not log in again on an expired token,
// so prefer Do.
func (c *Client) Raw() *vaultapi.Client { return c.api }

// Sys returns Raw().Sys(), for the system backend calls (mounts, health) that have typed helpers.
func (c *Client) Sys() *vaultapi.Sys { return c.api.Sys() }

// TokenValid returns nil while the token is believed usable, from the state the renewer keeps,
// without asking Vault; it is meant for /readyz.
func (c *Client) TokenValid() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.state != nil {
		return c.state
	}
	if !c.expiry.IsZero() && time.Now().After(c.expiry) {
		return fmt.Errorf("vault token expired at %s", c.expiry.Format(time.RFC3339))
	}
	return nil
}

// Read returns the secret at path; when nothing is there the error satisfies IsNotFound.
// op names the operation for metrics (e.g. "read-ca").
func (c *Client) Read(ctx context.Context, op, path string) (*vaultapi.Secret, error) {
	var secret *vaultapi.Secret
	err := c.Do(ctx, op, "read", true, func(ctx context.Context, api *vaultapi.Client) error {
		var err error
		secret, err = api.Logical().ReadWithContext(ctx, path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vault read %s: %w", path, err)
	}
	if secret == nil {
		return nil, fmt.Errorf("vault read %s: %w", path, ErrNotFound)
	}
	return secret, nil
}

// Write writes data to path once, without retrying on a 5xx or connection error, for
// requests that must not happen twice (e.g. generating a key); op names it for metrics.
func (c *Client) Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	return c.write(ctx, op, path, data, false)
}

// WriteIdempotent writes data to path, retrying on a 5xx or connection error, for requests
// whose repetition does no harm (e.g. configuring a role); op names it for metrics.
func (c *Client) WriteIdempotent(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	return c.write(ctx, op, path, data, true)
}

// write is Write or WriteIdempotent.
func (c *Client) write(ctx context.Context, op, path string, data map[string]any, idempotent bool) (*vaultapi.Secret, error) {
	var secret *vaultapi.Secret
	err := c.Do(ctx, op, "write", idempotent, func(ctx context.Context, api *vaultapi.Client) error {
		var err error
		secret, err = api.Logical().WriteWithContext(ctx, path, data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vault write %s: %w", path, err)
	}
	return secret, nil
}

// Delete deletes path, retrying on a 5xx or connection error; op names it for metrics.
func (c *Client) Delete(ctx context.Context, op, path string) error {
	err := c.Do(ctx, op, "delete", true, func(ctx context.Context, api *vaultapi.Client) error {
		_, err := api.Logical().DeleteWithContext(ctx, path)
		return err
	})
	if err != nil {
		return fmt.Errorf("vault delete %s: %w", path, err)
	}
	return nil
}

// List returns the keys under path (nil when there are none), retrying on a 5xx or
// connection error; op names it for metrics.
func (c *Client) List(ctx context.Context, op, path string) ([]string, error) {
	var secret *vaultapi.Secret
	err := c.Do(ctx, op, "list", true, func(ctx context.Context, api *vaultapi.Client) error {
		var err error
		secret, err = api.Logical().ListWithContext(ctx, path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vault list %s: %w", path, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, nil
	}
	raw, _ := secret.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		if s, ok := k.(string); ok {
			keys = append(keys, s)
		}
	}
	return keys, nil
}

// Do runs call with the retrying client (idempotent) or the non-retrying one, measures it
// under op and method, and when Vault answers that the token is no longer valid, logs in
// again once and repeats call once.
func (c *Client) Do(ctx context.Context, op, method string, idempotent bool, call func(ctx context.Context, api *vaultapi.Client) error) error {
	api := c.noRetry
	if idempotent {
		api = c.api
	}
	token := api.Token()
	err := c.measure(ctx, op, method, api, call)
	if err == nil || !looksLikeBadToken(err) || !c.tokenExpired(ctx, token) {
		return err
	}

	c.log.WithField("operation", op).Info("vault token is no longer valid, logging in again")
	if loginErr := c.relogin(ctx, token); loginErr != nil {
		return fmt.Errorf("%w (and logging in again failed: %v)", err, loginErr)
	}
	return c.measure(ctx, op, method, api, call)
}

// measure runs call and records its duration and result.
func (c *Client) measure(ctx context.Context, op, method string, api *vaultapi.Client, call func(context.Context, *vaultapi.Client) error) error {
	start := time.Now()
	err := call(ctx, api)
	c.metrics.requestDuration.WithLabelValues(op, method).Observe(time.Since(start).Seconds())
	c.metrics.requests.WithLabelValues(op, codeLabel(err)).Inc()
	return err
}

// tokenExpired reports whether Vault refuses to look up token itself, which tells an expired
// or revoked token apart from a policy that does not allow a path.
func (c *Client) tokenExpired(ctx context.Context, token string) bool {
	if token != c.api.Token() {
		return true // someone has already logged in again since this request was sent
	}
	_, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	return IsPermissionDenied(err)
}

// relogin logs in again unless another caller already replaced failedToken.
func (c *Client) relogin(ctx context.Context, failedToken string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.api.Token() != failedToken {
		return nil
	}
	return c.loginLocked(ctx)
}

// login logs in with the configured auth method.
func (c *Client) login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked(ctx)
}

// loginLocked logs in and installs the new token; loginMu must be held.
func (c *Client) loginLocked(ctx context.Context) error {
	start := time.Now()
	auth, err := c.authenticate(ctx)
	c.metrics.requestDuration.WithLabelValues("login", "login").Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.logins.WithLabelValues(c.cfg.Auth, "failure").Inc()
		c.setState(fmt.Errorf("vault login failed: %s", ErrorMessage(err)))
		return fmt.Errorf("vault login with %s auth: %w", c.cfg.Auth, err)
	}
	c.metrics.logins.WithLabelValues(c.cfg.Auth, "success").Inc()

	c.api.SetToken(auth.ClientToken)
	c.noRetry.SetToken(auth.ClientToken)
	c.mu.Lock()
	c.auth = auth
	c.expiry = expiryOf(auth, time.Now())
	c.state = nil
	c.mu.Unlock()

	c.log.WithFields(logrus.Fields{
		"ttl":       time.Duration(auth.LeaseDuration) * time.Second,
		"renewable": auth.Renewable,
		"policies":  strings.Join(auth.Policies, ","),
	}).Info("logged in to vault")
	select {
	case c.loggedIn <- struct{}{}:
	default: // Start has a signal pending already
	}
	return nil
}

// authenticate obtains a token with the configured method, without changing the client.
func (c *Client) authenticate(ctx context.Context) (*vaultapi.SecretAuth, error) {
	switch c.cfg.Auth {
	case AuthToken:
		return c.tokenAuth(ctx)
	case AuthKubernetes:
		jwt, err := readSecretFile(c.cfg.KubernetesTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read ServiceAccount token: %w", err)
		}
		return c.loginAt(ctx, c.cfg.KubernetesMountPath, map[string]any{"role": c.cfg.KubernetesRole, "jwt": jwt})
	case AuthAppRole:
		secretID := c.cfg.AppRoleSecretID
		if c.cfg.AppRoleSecretIDFile != "" {
			var err error
			if secretID, err = readSecretFile(c.cfg.AppRoleSecretIDFile); err != nil {
				return nil, fmt.Errorf("read AppRole secret id: %w", err)
			}
		}
		return c.loginAt(ctx, c.cfg.AppRoleMountPath, map[string]any{"role_id": c.cfg.AppRoleRoleID, "secret_id": secretID})
	default:
		return nil, fmt.Errorf("unknown auth method %q", c.cfg.Auth)
	}
}

// loginAt writes data to auth/<mount>/login with a token-less client and returns the auth.
func (c *Client) loginAt(ctx context.Context, mount string, data map[string]any) (*vaultapi.SecretAuth, error) {
	anon, err := c.api.Clone() // a clone carries no token
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	path := "auth/" + strings.Trim(mount, "/") + "/login"
	secret, err := anon.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, fmt.Errorf("write %s: vault returned no token", path)
	}
	return secret.Auth, nil
}

// tokenAuth takes the configured token (reading the file again, for tokens an agent rotates)
// and looks it up to learn its TTL and whether it can be renewed.
func (c *Client) tokenAuth(ctx context.Context) (*vaultapi.SecretAuth, error) {
	token := c.cfg.Token
	if c.cfg.TokenFile != "" {
		var err error
		if token, err = readSecretFile(c.cfg.TokenFile); err != nil {
			return nil, fmt.Errorf("read token file: %w", err)
		}
	}
	probe, err := c.api.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	probe.SetToken(token)
	self, err := probe.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	ttl, err := self.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("read token TTL: %w", err)
	}
	renewable, err := self.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("read whether token is renewable: %w", err)
	}
	policies, _ := self.TokenPolicies()
	return &vaultapi.SecretAuth{
		ClientToken:   token,
		Policies:      policies,
		LeaseDuration: int(ttl.Seconds()),
		Renewable:     renewable,
	}, nil
}

// setState records why the token is unusable (nil: usable).
func (c *Client) setState(err error) {
	c.mu.Lock()
	c.state = err
	c.mu.Unlock()
}

// currentAuth returns the current login.
func (c *Client) currentAuth() *vaultapi.SecretAuth {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.auth
}

// expiryOf returns when auth's token expires, or zero when it has no TTL.
func expiryOf(auth *vaultapi.SecretAuth, now time.Time) time.Time {
	if auth.LeaseDuration <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(auth.LeaseDuration) * time.Second)
}

// readSecretFile returns a file's content without surrounding whitespace; the content is never
// logged or put into an error.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(path + " is empty")
	}
	return s, nil
}
