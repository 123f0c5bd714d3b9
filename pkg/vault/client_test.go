package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeVault answers the few endpoints the client uses; only validToken is accepted.
type fakeVault struct {
	mu         sync.Mutex
	validToken string
	logins     atomic.Int32
	flaky      atomic.Int32 // requests to secret/flaky
	renewals   atomic.Int32
}

func (f *fakeVault) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, code int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
	denied := map[string]any{"errors": []string{"permission denied"}}
	authorized := func(r *http.Request) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.validToken != "" && r.Header.Get("X-Vault-Token") == f.validToken
	}

	mux.HandleFunc("/v1/auth/approle/login", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["role_id"] != "role" || body["secret_id"] != "s3cret" || r.Header.Get("X-Vault-Token") != "" {
			reply(w, 400, map[string]any{"errors": []string{"invalid role or secret ID"}})
			return
		}
		n := f.logins.Add(1)
		f.mu.Lock()
		f.validToken = fmt.Sprintf("token-%d", n)
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // let concurrent callers pile up
		reply(w, 200, map[string]any{"auth": map[string]any{
			"client_token": f.validToken, "lease_duration": 3600, "renewable": true, "policies": []string{"cert-operator"},
		}})
	})
	mux.HandleFunc("/v1/auth/token/lookup-self", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			reply(w, 403, denied)
			return
		}
		reply(w, 200, map[string]any{"data": map[string]any{"ttl": 3600, "renewable": true}})
	})
	mux.HandleFunc("/v1/auth/token/renew-self", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			reply(w, 403, denied)
			return
		}
		f.renewals.Add(1)
		reply(w, 200, map[string]any{"auth": map[string]any{
			"client_token": r.Header.Get("X-Vault-Token"), "lease_duration": 3600, "renewable": true,
		}})
	})
	mux.HandleFunc("/v1/secret/data", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			reply(w, 403, denied)
			return
		}
		reply(w, 200, map[string]any{"data": map[string]any{"value": "x"}})
	})
	mux.HandleFunc("/v1/secret/forbidden", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 403, denied)
	})
	mux.HandleFunc("/v1/secret/missing", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 404, map[string]any{"errors": []string{}})
	})
	mux.HandleFunc("/v1/secret/flaky", func(w http.ResponseWriter, r *http.Request) {
		f.flaky.Add(1)
		reply(w, 500, map[string]any{"errors": []string{"internal error"}})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		reply(w, 404, map[string]any{"errors": []string{}})
	})
	return mux
}

// expire makes the current token invalid, as if its TTL had run out.
func (f *fakeVault) expire() {
	f.mu.Lock()
	f.validToken = ""
	f.mu.Unlock()
}

// newTestClient starts a fake Vault and logs in to it with AppRole.
func newTestClient(t *testing.T) (*Client, *fakeVault) {
	t.Helper()
	return newTestClientWith(t, nil)
}

// newTestClientWith is newTestClient counting in m (nil: the process's registry).
func newTestClientWith(t *testing.T, m *Metrics) (*Client, *fakeVault) {
	t.Helper()
	t.Setenv("VAULT_TOKEN", "") // a developer's token must not leak into the test
	fv := &fakeVault{}
	srv := httptest.NewServer(fv.handler(t))
	t.Cleanup(srv.Close)

	secretFile := filepath.Join(t.TempDir(), "secret-id")
	require.NoError(t, os.WriteFile(secretFile, []byte("s3cret\n"), 0o600))
	log := logrus.New()
	log.SetOutput(io.Discard)

	c, err := New(context.Background(), Config{
		Addr: srv.URL, Auth: AuthAppRole, AppRoleRoleID: "role", AppRoleSecretIDFile: secretFile, MaxRetries: 2, Metrics: m,
	}, log)
	require.NoError(t, err)
	for _, api := range []*vaultapi.Client{c.api, c.noRetry} {
		api.SetMinRetryWait(time.Millisecond)
		api.SetMaxRetryWait(5 * time.Millisecond)
	}
	return c, fv
}

func TestNewLogsInOnce(t *testing.T) {
	c, fv := newTestClient(t)
	assert.Equal(t, int32(1), fv.logins.Load())
	assert.NoError(t, c.TokenValid())

	secret, err := c.Read(context.Background(), "test", "secret/data")
	require.NoError(t, err)
	assert.Equal(t, "x", secret.Data["value"])
	assert.Equal(t, int32(1), fv.logins.Load(), "a request must not log in")
}

func TestExpiredTokenLogsInOnceForConcurrentRequests(t *testing.T) {
	c, fv := newTestClient(t)
	fv.expire()

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.Read(context.Background(), "test", "secret/data") })
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int32(2), fv.logins.Load(), "one login at start, one after expiry")
}

func TestRequestsCountInTheirOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	c, _ := newTestClientWith(t, m)
	_, err = c.Read(context.Background(), "read-data", "secret/data")
	require.NoError(t, err)
	_, err = c.Read(context.Background(), "read-data", "secret/forbidden")
	require.Error(t, err)

	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("read-data", "2xx")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("read-data", "403")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.logins.WithLabelValues(AuthAppRole, "success")))

	again, err := NewMetrics(reg)
	require.NoError(t, err)
	assert.Same(t, m.requests, again.requests, "a second client of the registry shares its counters")
}

func TestPolicyDenialDoesNotLogIn(t *testing.T) {
	c, fv := newTestClient(t)
	_, err := c.Read(context.Background(), "test", "secret/forbidden")
	assert.True(t, IsPermissionDenied(err))
	assert.Equal(t, "Vault answered 403: permission denied", ErrorMessage(err))
	assert.Equal(t, int32(1), fv.logins.Load())
}

func TestReadOfNothingIsNotFound(t *testing.T) {
	c, _ := newTestClient(t)
	_, err := c.Read(context.Background(), "test", "secret/missing")
	assert.True(t, IsNotFound(err), "got %v", err)
}

func TestRetries(t *testing.T) {
	tests := map[string]struct {
		call         func(c *Client) error
		wantAttempts int32
	}{
		"a write is sent once": {
			call: func(c *Client) error {
				_, err := c.Write(context.Background(), "test", "secret/flaky", map[string]any{"a": 1})
				return err
			},
			wantAttempts: 1,
		},
		"an idempotent write is retried": {
			call: func(c *Client) error {
				_, err := c.WriteIdempotent(context.Background(), "test", "secret/flaky", map[string]any{"a": 1})
				return err
			},
			wantAttempts: 3,
		},
		"a read is retried": {
			call: func(c *Client) error {
				_, err := c.Read(context.Background(), "test", "secret/flaky")
				return err
			},
			wantAttempts: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, fv := newTestClient(t)
			err := tc.call(c)
			assert.True(t, IsUnavailable(err), "got %v", err)
			assert.Equal(t, tc.wantAttempts, fv.flaky.Load())
		})
	}
}

func TestBadCredentialsFailNew(t *testing.T) {
	fv := &fakeVault{}
	srv := httptest.NewServer(fv.handler(t))
	defer srv.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)

	_, err := New(context.Background(), Config{
		Addr: srv.URL, Auth: AuthAppRole, AppRoleRoleID: "role", AppRoleSecretID: "wrong",
	}, log)
	require.Error(t, err)
	assert.Contains(t, ErrorMessage(err), "invalid role or secret ID")
	assert.NotContains(t, err.Error(), "wrong", "a secret id must never appear in an error")
}

func TestStartRenewsAfterARequestDrivenLogin(t *testing.T) {
	c, fv := newTestClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Start(ctx)
	}()

	assert.Eventually(t, func() bool { return fv.renewals.Load() >= 1 }, 5*time.Second, 10*time.Millisecond,
		"the first token is renewed")

	fv.expire()
	_, err := c.Read(ctx, "test", "secret/data")
	require.NoError(t, err)
	assert.NoError(t, c.TokenValid())
	assert.Eventually(t, func() bool { return fv.renewals.Load() >= 2 }, 5*time.Second, 10*time.Millisecond,
		"the token from the new login is renewed")
	cancel()
	<-done
	assert.Equal(t, int32(2), fv.logins.Load())
}

func TestErrorHelpers(t *testing.T) {
	sealed := &vaultapi.ResponseError{StatusCode: 503}
	tests := map[string]struct {
		err             error
		wantNotFound    bool
		wantDenied      bool
		wantUnavailable bool
		wantMessage     string
	}{
		"nil is nothing": {err: nil, wantMessage: ""},
		"a sealed vault is unavailable": {
			err: fmt.Errorf("sign: %w", sealed), wantUnavailable: true, wantMessage: "Vault is sealed or unavailable (503)",
		},
		"a 404 is not found": {
			err: &vaultapi.ResponseError{StatusCode: 404}, wantNotFound: true, wantMessage: "Vault answered 404 Not Found",
		},
		"a refused connection is unavailable": {
			err:             fmt.Errorf("read: %w", &netError{}),
			wantUnavailable: true, wantMessage: "cannot reach Vault: read: connection refused",
		},
		"a 400 carries Vault's words": {
			err:         &vaultapi.ResponseError{StatusCode: 400, Errors: []string{"common name not allowed by role"}},
			wantMessage: "Vault answered 400: common name not allowed by role",
		},
		"any other error is passed through": {err: errors.New("boom"), wantMessage: "boom"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.wantNotFound, IsNotFound(tc.err))
			assert.Equal(t, tc.wantDenied, IsPermissionDenied(tc.err))
			assert.Equal(t, tc.wantUnavailable, IsUnavailable(tc.err))
			assert.Equal(t, tc.wantMessage, ErrorMessage(tc.err))
		})
	}
}

// netError is a net.Error for a refused connection.
type netError struct{}

func (*netError) Error() string   { return "connection refused" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return false }

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string // empty: valid
	}{
		"token auth with a token is valid":  {cfg: Config{Addr: "https://v", Auth: "token", Token: "t"}},
		"an address is required":            {cfg: Config{Auth: "token", Token: "t"}, wantErr: "--vault-addr is required"},
		"an unknown auth method is refused": {cfg: Config{Addr: "https://v", Auth: "ldap"}, wantErr: `--vault-auth must be token, kubernetes or approle, not "ldap"`},
		"kubernetes auth needs a role":      {cfg: Config{Addr: "https://v", Auth: "kubernetes"}, wantErr: "--vault-auth=kubernetes needs --vault-kubernetes-role"},
		"approle auth needs a secret id":    {cfg: Config{Addr: "https://v", Auth: "approle", AppRoleRoleID: "r"}, wantErr: "--vault-auth=approle needs --vault-approle-secret-id-file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.wantErr)
		})
	}
}

func TestDescribeHidesAddressesAndTokens(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "https://vault.example.com:8200/v1/clusterpki/a/b/root/root/generate/internal",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	denied := &vaultapi.ResponseError{HTTPMethod: "PUT", URL: "https://10.0.0.7:8200/v1/pki-corp/sign/web",
		StatusCode: 403, Errors: []string{"1 error occurred:\n\t* permission denied\n\n"}}
	tests := map[string]struct {
		err  error
		want string
	}{
		"a Vault refusal keeps our context and Vault's words": {
			err:  fmt.Errorf("enable mount clusterpki/a/b/root: %w", denied),
			want: "enable mount clusterpki/a/b/root: Vault answered 403: 1 error occurred:\n\t* permission denied",
		},
		"a refused connection names neither URL nor address": {
			err:  fmt.Errorf("generate root in clusterpki/a/b/root: %w", refused),
			want: "generate root in clusterpki/a/b/root: cannot reach Vault: connection refused",
		},
		"a stray address in our own text is hidden": {
			err:  errors.New("giving up on 127.0.0.1:8200 and https://vault:8200/v1/x"),
			want: "giving up on <vault> and <vault>",
		},
		"timestamps and serials are left alone": {
			err:  errors.New("expires at 2026-11-28T04:52:46Z, serial 3a:5f:12"),
			want: "expires at 2026-11-28T04:52:46Z, serial 3a:5f:12",
		},
		"nil is empty": {err: nil, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Describe(tc.err)
			assert.Equal(t, tc.want, got)
			assert.NotContains(t, got, "8200")
		})
	}
}

func TestErrorClasses(t *testing.T) {
	answer := func(code int, msgs ...string) error {
		return fmt.Errorf("op: %w", &vaultapi.ResponseError{StatusCode: code, Errors: msgs})
	}
	tests := map[string]struct {
		err                  error
		missing, inUse, unav bool
		refusal              string
	}{
		"404":                      {err: answer(404), missing: true, refusal: "Not Found"},
		"nothing read":             {err: fmt.Errorf("read: %w", ErrNotFound), missing: true},
		"400 no mount":             {err: answer(400, "no secret engine mount at clusterpki/a/b/root/"), missing: true, refusal: "no secret engine mount at clusterpki/a/b/root/"},
		"400 no default issuer":    {err: answer(400, "no default issuer currently configured"), missing: true, refusal: "no default issuer currently configured"},
		"500 unknown issuer":       {err: answer(500, "unable to find PKI issuer for reference: root-r1"), missing: true},
		"500 other":                {err: answer(500, "internal error"), unav: true},
		"400 other":                {err: answer(400, "common name not allowed"), refusal: "common name not allowed"},
		"400 path in use":          {err: answer(400, "path is already in use at clusterpki/a/"), inUse: true, refusal: "path is already in use at clusterpki/a/"},
		"403":                      {err: answer(403, "permission denied"), refusal: "permission denied"},
		"412 standby behind":       {err: answer(412)},
		"429":                      {err: answer(429)},
		"503 sealed":               {err: answer(503, "Vault is sealed"), unav: true},
		"connection refused":       {err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED), unav: true},
		"no Vault answer, no kind": {err: errors.New("boom")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.missing, IsMissing(tc.err), "IsMissing")
			assert.Equal(t, tc.inUse, IsInUse(tc.err), "IsInUse")
			assert.Equal(t, tc.unav, IsUnavailable(tc.err), "IsUnavailable")
			msg, refused := Refusal(tc.err)
			assert.Equal(t, tc.refusal != "", refused, "Refusal")
			assert.Equal(t, tc.refusal, msg)
		})
	}
}
