// Package plugintest runs kubectl clusterpki against a real kube-apiserver and Vault with both
// operators running as processes, built from this checkout, on deploy/examples.
package plugintest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/proc"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var (
	env  *testenv.Env
	root string
	// metricsAddrs are the operators' /metrics addresses, by operator name.
	metricsAddrs = map[string]string{}
)

func TestMain(m *testing.M) {
	var procs []*proc.Process
	code := testenv.Main(m, func(e *testenv.Env) error {
		env, root = e, e.RepoRoot
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := e.InstallShippedCRDs(ctx); err != nil {
			return err
		}
		var err error
		procs, err = startOperators(ctx, e)
		return err
	})
	for _, p := range procs {
		p.Stop()
	}
	os.Exit(code)
}

// startOperators builds both operators from the checkout and runs them against env, logging in
// to Vault with the root token, each with its own /metrics address; it waits for /readyz.
func startOperators(ctx context.Context, e *testenv.Env) ([]*proc.Process, error) {
	bin, err := os.MkdirTemp("", "clusterpki-plugin-test-")
	if err != nil {
		return nil, err
	}
	var procs []*proc.Process
	for _, name := range []string{"ca-operator", "cert-operator"} {
		path := filepath.Join(bin, name)
		build := exec.CommandContext(ctx, "go", "build", "-o", path, ".")
		build.Dir = filepath.Join(root, name)
		if out, err := build.CombinedOutput(); err != nil {
			return procs, fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
		addr, err := proc.FreeAddr()
		if err != nil {
			return procs, err
		}
		p, err := proc.Start(proc.Spec{Name: name, Path: path, LogPath: filepath.Join(e.Dir, name+".log"),
			Args: []string{"--kubeconfig=" + e.Kubeconfig, "--metrics-addr=" + addr, "--leader-elect=false",
				"--vault-addr=" + e.VaultAddr, "--vault-auth=token"},
			Env: append(os.Environ(), "VAULT_TOKEN="+e.VaultRootToken)})
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
		metricsAddrs[name] = addr
		if err := p.WaitReady(ctx, "http://"+addr+"/readyz", time.Minute); err != nil {
			return procs, err
		}
	}
	return procs, nil
}
