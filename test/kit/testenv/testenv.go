// Package testenv runs a real control plane for tests and local use: etcd,
// kube-apiserver (TLS, RBAC, ServiceAccount tokens) and a Vault server with
// persistent storage, each on free loopback ports under one work directory.
// The binaries are the versions pinned in scripts/versions.env, built by
// scripts/build-tools.sh when missing.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Dir is the work directory (data, certificates, logs). Empty means a new
	// temporary directory, removed by Stop. A given Dir is kept, and its etcd
	// and Vault data are reused by the next Start.
	Dir string
	// StartTimeout bounds each program's start-up, counted from the moment that program starts
	// (after its binary exists); 0 means 2 minutes.
	StartTimeout time.Duration
	// Progress receives the progress lines of a tool build (see EnsureBinaries); nil means
	// standard error.
	Progress io.Writer
}

// Env is a running control plane. Its fields are read-only.
type Env struct {
	// Dir is the work directory; logs are Dir/*.log.
	Dir string
	// RepoRoot is the clusterpki checkout (see the function RepoRoot): deploy/, scripts/.
	RepoRoot string
	// APIServerURL is the https URL of kube-apiserver.
	APIServerURL string
	// CAFile and CAData hold the CA that signed the API server's serving
	// certificate (and that the API server trusts for client certificates).
	CAFile string
	CAData []byte
	// RESTConfig is an admin config (client certificate CN=clusterpki-admin, O=system:masters).
	RESTConfig *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same admin credentials.
	Kubeconfig string
	// KubeClient is a clientset built from RESTConfig.
	KubeClient kubernetes.Interface
	// VaultAddr is Vault's http address; VaultRootToken and VaultUnsealKey
	// come from its initialisation (also in Dir/vault/root-token and unseal-key).
	VaultAddr      string
	VaultRootToken string
	VaultUnsealKey string

	bins       binaries
	ownDir     bool // Dir was made by Start and is removed by Stop
	startLimit time.Duration
	vaultPort  int

	mu        sync.Mutex
	etcd      *proc.Process
	apiserver *proc.Process
	vault     *proc.Process
	stopped   bool
}

// Start starts etcd, kube-apiserver and Vault, waits until all are ready and
// Vault is initialised and unsealed. On error everything started is stopped
// again and the logs stay in the work directory; the error carries their tails.
//
// A tool that is not built yet is built first (EnsureBinaries). Cancelling ctx
// stops Start at any point, but a deadline on ctx is not applied: no deadline
// covers a tool build, and each program's start-up is bounded by
// Options.StartTimeout on its own.
func Start(ctx context.Context, opts Options) (*Env, error) {
	ctx, cancel := withoutDeadline(ctx)
	defer cancel()
	e := &Env{Dir: opts.Dir, startLimit: opts.StartTimeout}
	if e.startLimit == 0 {
		e.startLimit = 2 * time.Minute
	}
	progress := opts.Progress
	if progress == nil {
		progress = os.Stderr
	}
	var err error
	if e.RepoRoot, err = RepoRoot(); err != nil {
		return nil, err
	}
	if e.bins, err = findBinaries(ctx, progress); err != nil {
		return nil, err
	}
	if e.Dir == "" {
		if e.Dir, err = os.MkdirTemp("", "clusterpki-testenv-"); err != nil {
			return nil, err
		}
		e.ownDir = true
	}
	if e.Dir, err = filepath.Abs(e.Dir); err != nil {
		return nil, err
	}
	if err := e.start(ctx); err != nil {
		e.stopProcesses()
		return nil, err
	}
	return e, nil
}

func (e *Env) start(ctx context.Context) error {
	for _, d := range []string{"etcd", "pki", "vault"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o700); err != nil {
			return err
		}
	}
	ports, err := proc.FreePorts(4)
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := e.startEtcd(etcdURL, fmt.Sprintf("http://127.0.0.1:%d", ports[1])); err != nil {
		return err
	}
	e.vaultPort = ports[3]
	e.VaultAddr = "http://127.0.0.1:" + strconv.Itoa(e.vaultPort)
	if err := e.writeVaultConfig(); err != nil {
		return err
	}
	if err := e.startVaultProcess(); err != nil {
		return err
	}
	if err := e.waitEtcd(ctx, etcdURL); err != nil {
		return err
	}
	if err := e.startAPIServer(etcdURL, ports[2]); err != nil {
		return err
	}
	// Vault starts while kube-apiserver boots.
	if err := e.initVault(ctx); err != nil {
		return err
	}
	return e.waitAPIServer(ctx)
}

// Stop stops Vault, kube-apiserver and etcd (SIGTERM, then SIGKILL after a
// timeout) and removes the work directory if Start created it. It is safe to
// call more than once.
func (e *Env) Stop() error {
	e.stopProcesses()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.stopped = true
	if e.ownDir {
		return os.RemoveAll(e.Dir)
	}
	return nil
}

func (e *Env) stopProcesses() {
	e.mu.Lock()
	procs := []*proc.Process{e.apiserver, e.vault, e.etcd}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs[:2] { // API server and Vault in parallel, etcd last
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	procs[2].Stop()
}

// LogTails returns the last n lines of each program's log, for failure reports.
func (e *Env) LogTails(n int) string {
	return LogTails(e.Dir, n)
}

// LogTails returns the last n lines of every *.log file in dir.
func LogTails(dir string, n int) string {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var out string
	for _, l := range logs {
		out += fmt.Sprintf("--- %s (last %d lines)\n%s\n", l, n, Tail(l, n))
	}
	return out
}

// VaultClient returns a Vault API client for VaultAddr with the root token.
func (e *Env) VaultClient() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = e.VaultAddr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.ClearNamespace() // ignore a VAULT_NAMESPACE from the environment
	c.SetToken(e.VaultRootToken)
	return c, nil
}

// withoutDeadline returns a context that ends when ctx is cancelled, but not when ctx's
// deadline passes.
func withoutDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return c, func() { stop(); cancel() }
}

// Check returns an error naming the first program of the environment that has
// exited, with its log tail; nil while all run (a Vault stopped by StopVault
// counts as exited).
func (e *Env) Check() error {
	e.mu.Lock()
	procs := []*proc.Process{e.etcd, e.apiserver, e.vault}
	e.mu.Unlock()
	for _, p := range procs {
		if p == nil {
			continue
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("testenv: %s exited (%v); log %s:\n%s", p.Name, err, p.LogPath, Tail(p.LogPath, 30))
		}
	}
	return nil
}
