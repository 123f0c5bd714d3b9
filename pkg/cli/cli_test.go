package cli

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/pkg/version"
)

// validOptions returns defaults plus the Vault settings Validate requires.
func validOptions() *Options {
	o := NewOptions()
	o.LeaderElectionID = "ca-operator"
	o.Vault.Addr = "https://vault:8200"
	o.Vault.KubernetesRole = "ca-operator"
	return o
}

func TestBindEnv(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		args    []string
		want    func(*Options) // fields expected to differ from the defaults
		wantErr string         // empty: no error
	}{
		"an environment variable sets an unset flag": {
			env:  map[string]string{"CLUSTERPKI_WORKERS": "3", "CLUSTERPKI_VAULT_TIMEOUT": "5s"},
			want: func(o *Options) { o.Workers = 3; o.Vault.Timeout = 5 * time.Second },
		},
		"the command line wins over the environment": {
			env:  map[string]string{"CLUSTERPKI_WORKERS": "3"},
			args: []string{"--workers=4"},
			want: func(o *Options) { o.Workers = 4 },
		},
		"the Vault CLI's variables are fallbacks": {
			env:  map[string]string{"VAULT_ADDR": "https://other:8200", "VAULT_CACERT": "/ca.pem"},
			want: func(o *Options) { o.Vault.Addr = "https://other:8200"; o.Vault.CACert = "/ca.pem" },
		},
		"a token in the environment is not bound to any flag": {
			env:  map[string]string{"VAULT_TOKEN": "t", "CLUSTERPKI_VAULT_TOKEN": "t"},
			want: func(*Options) {},
		},
		"the finalizer timeout is a duration": {
			env:  map[string]string{"CLUSTERPKI_FINALIZER_TIMEOUT": "30s"},
			want: func(o *Options) { o.FinalizerTimeout = 30 * time.Second },
		},
		"our variable wins over the Vault CLI's": {
			env:  map[string]string{"VAULT_ADDR": "https://other:8200", "CLUSTERPKI_VAULT_ADDR": "https://ours:8200"},
			want: func(o *Options) { o.Vault.Addr = "https://ours:8200" },
		},
		"a boolean is parsed": {
			env:  map[string]string{"CLUSTERPKI_LEADER_ELECT": "false"},
			want: func(o *Options) { o.LeaderElect = false },
		},
		"an unparsable value names the variable and the flag": {
			env:     map[string]string{"CLUSTERPKI_KUBE_API_QPS": "fast"},
			wantErr: "environment variable CLUSTERPKI_KUBE_API_QPS is not a valid value for --kube-api-qps (float32)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "CLUSTERPKI_VAULT_TOKEN"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got := NewOptions()
			cmd := &cobra.Command{Use: "test"}
			got.AddFlags(cmd.Flags())
			require.NoError(t, cmd.Flags().Parse(tc.args))

			err := BindEnv(cmd, EnvPrefix)
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := NewOptions()
			tc.want(want)
			assert.Equal(t, want, got)
		})
	}
}

func TestTokenFromEnv(t *testing.T) {
	tests := map[string]struct {
		env       map[string]string
		wantToken string // empty: no token
	}{
		"our variable is read":                   {env: map[string]string{"CLUSTERPKI_VAULT_TOKEN": "ours"}, wantToken: "ours"},
		"the Vault CLI's variable is a fallback": {env: map[string]string{"VAULT_TOKEN": "cli"}, wantToken: "cli"},
		"our variable wins over the Vault CLI's": {env: map[string]string{"CLUSTERPKI_VAULT_TOKEN": "ours", "VAULT_TOKEN": "cli"}, wantToken: "ours"},
		"no variable, no token":                  {env: map[string]string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"CLUSTERPKI_VAULT_TOKEN", "VAULT_TOKEN"} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o := NewOptions()
			o.TokenFromEnv()
			assert.Equal(t, tc.wantToken, o.Vault.Token)
		})
	}
}

// TestNoTokenFlag keeps tokens off the command line, where ps and the pod spec show them.
func TestNoTokenFlag(t *testing.T) {
	t.Setenv("CLUSTERPKI_VAULT_ADDR", "https://vault:8200")
	cmd := NewRootCommand("ca-operator", "short", "long", NewOptions(), nil, func(context.Context, *logrus.Logger) error { return nil })
	assert.Nil(t, cmd.Flags().Lookup("vault-token"))
	cmd.SetArgs([]string{"--vault-auth=token", "--vault-token=s3cret"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown flag: --vault-token")
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestRootCommandReadsTokenFromEnvironment(t *testing.T) {
	t.Setenv("CLUSTERPKI_VAULT_ADDR", "https://vault:8200")
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("CLUSTERPKI_VAULT_TOKEN", "from-env")
	opts := NewOptions()
	cmd := NewRootCommand("ca-operator", "short", "long", opts, nil, func(context.Context, *logrus.Logger) error { return nil })
	cmd.SetArgs([]string{"--vault-auth=token", "--log-level=error"})
	cmd.SetErr(&bytes.Buffer{})
	require.NoError(t, cmd.Execute())
	assert.Equal(t, "from-env", opts.Vault.Token)
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		change  func(*Options)
		wantErr string // empty: valid
	}{
		"the defaults with a Vault role are valid": {change: func(*Options) {}},
		"an unknown auth method is refused": {
			change:  func(o *Options) { o.Vault.Auth = "ldap" },
			wantErr: `--vault-auth must be token, kubernetes or approle, not "ldap"`,
		},
		"a zero finalizer timeout is refused": {
			change:  func(o *Options) { o.FinalizerTimeout = 0 },
			wantErr: "--finalizer-timeout must be positive, got 0s",
		},
		"token auth without a token or token file is refused": {
			change:  func(o *Options) { o.Vault.Auth = "token" },
			wantErr: "--vault-auth=token needs --vault-token-file or a token in $CLUSTERPKI_VAULT_TOKEN or $VAULT_TOKEN",
		},
		"zero workers are refused": {
			change:  func(o *Options) { o.Workers = 0 },
			wantErr: "--workers must be at least 1, got 0",
		},
		"an unknown log level is refused": {
			change:  func(o *Options) { o.LogLevel = "loud" },
			wantErr: `--log-level must be trace, debug, info, warning or error, not "loud"`,
		},
		"leader election needs a lease name": {
			change:  func(o *Options) { o.LeaderElectionID = "" },
			wantErr: "--leader-elect needs --leader-election-namespace and --leader-election-id",
		},
		"every problem is reported at once": {
			change:  func(o *Options) { o.LogFormat = "yaml"; o.Vault.Addr = "" },
			wantErr: "--log-format must be text or json, not \"yaml\"\n--vault-addr is required",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := validOptions()
			tc.change(o)
			err := o.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.wantErr)
		})
	}
}

func TestRootCommandVersion(t *testing.T) {
	var ran bool
	cmd := NewRootCommand("ca-operator", "short", "long", NewOptions(), nil, func(context.Context, *logrus.Logger) error {
		ran = true
		return nil
	})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	require.NoError(t, cmd.Execute())
	assert.False(t, ran)
	assert.Equal(t, version.String("ca-operator")+"\n", out.String())
	assert.Contains(t, out.String(), runtime.Version())
}

func TestRootCommandRuns(t *testing.T) {
	t.Setenv("CLUSTERPKI_VAULT_ADDR", "https://vault:8200")
	t.Setenv("CLUSTERPKI_VAULT_KUBERNETES_ROLE", "ca-operator")
	var got *Options
	opts := NewOptions()
	cmd := NewRootCommand("ca-operator", "short", "long", opts, nil, func(ctx context.Context, log *logrus.Logger) error {
		got = opts
		assert.NoError(t, ctx.Err())
		return nil
	})
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--workers=2", "--log-format=json"})
	require.NoError(t, cmd.Execute())
	require.NotNil(t, got)
	assert.Equal(t, 2, got.Workers)
	assert.Equal(t, "ca-operator", got.LeaderElectionID)
	assert.True(t, strings.HasPrefix(stderr.String(), "{"), "logs are JSON: %s", stderr.String())
}

func TestHelpMentionsEnvironment(t *testing.T) {
	cmd := NewRootCommand("ca-operator", "short", "long", NewOptions(), nil, func(context.Context, *logrus.Logger) error { return nil })
	assert.Contains(t, cmd.Flags().Lookup("vault-addr").Usage, "[env CLUSTERPKI_VAULT_ADDR]")
	assert.Contains(t, cmd.Flags().Lookup("kube-api-burst").Usage, "[env CLUSTERPKI_KUBE_API_BURST]")
}
