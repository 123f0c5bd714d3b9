// Package plugintest runs kubectl clusterpki against a real kube-apiserver and Vault with both
// operators running as processes, built from this checkout, on deploy/examples.
package plugintest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/pkg/testenv"
)

var (
	env  *testenv.Env
	root string
	// metricsAddrs are the operators' /metrics addresses, by operator name.
	metricsAddrs = map[string]string{}
)

func TestMain(m *testing.M) {
	var procs []*exec.Cmd
	code := testenv.Main(m, func(e *testenv.Env) error {
		env = e
		var err error
		if root, err = testenv.RepoRoot(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := e.InstallCRDs(ctx, filepath.Join(root, "deploy", "crds")); err != nil {
			return err
		}
		procs, err = startOperators(ctx, e)
		return err
	})
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
	os.Exit(code)
}

// startOperators builds both operators from the checkout and runs them against env, logging in
// to Vault with the root token, each with its own /metrics address; it waits for /readyz.
func startOperators(ctx context.Context, e *testenv.Env) ([]*exec.Cmd, error) {
	bin, err := os.MkdirTemp("", "clusterpki-plugin-test-")
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	for _, name := range []string{"ca-operator", "cert-operator"} {
		path := filepath.Join(bin, name)
		build := exec.CommandContext(ctx, "go", "build", "-o", path, ".")
		build.Dir = filepath.Join(root, name)
		if out, err := build.CombinedOutput(); err != nil {
			return procs, fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
		addr, err := freeAddr()
		if err != nil {
			return procs, err
		}
		logPath := filepath.Join(e.Dir, name+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return procs, err
		}
		cmd := exec.Command(path, "--kubeconfig="+e.Kubeconfig, "--metrics-addr="+addr, "--leader-elect=false",
			"--vault-addr="+e.VaultAddr, "--vault-auth=token")
		cmd.Env = append(os.Environ(), "VAULT_TOKEN="+e.VaultRootToken)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := testenv.Spawn(cmd); err != nil {
			return procs, fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		metricsAddrs[name] = addr
		if err := waitReady(ctx, "http://"+addr+"/readyz"); err != nil {
			return procs, fmt.Errorf("%s not ready: %w; log %s:\n%s", name, err, logPath, testenv.Tail(logPath, 20))
		}
	}
	return procs, nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
