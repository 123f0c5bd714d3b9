package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/site"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// build runs `make build BIN=<bin-dir>` when an operator binary is missing (or --rebuild).
func (d *demo) build(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		return "", errors.New("kubectl is not on PATH: the demo applies deploy/ with it (install kubectl, any recent version)")
	}
	missing := d.opts.rebuild
	for _, op := range operators {
		if st, err := os.Stat(filepath.Join(d.opts.binDir, op)); err != nil || st.Mode()&0o111 == 0 {
			missing = true
		}
	}
	rel := relToCwd(d.opts.binDir)
	if !missing {
		return fmt.Sprintf("%s/ca-operator and %s/cert-operator exist (--rebuild to build them again)", rel, rel), nil
	}
	err := d.withProgress(func(elapsed time.Duration) string {
		return fmt.Sprintf("building the operators with go build: %v elapsed (Go caches it; later builds take seconds)", elapsed)
	}, func() error {
		return d.command(ctx, "build", nil, "make", "-C", d.root, "build", "BIN="+d.opts.binDir)
	})
	if err != nil {
		return "", err
	}
	return "built " + rel + "/ca-operator and " + rel + "/cert-operator", nil
}

// buildTools is the step that builds etcd, kube-apiserver and Vault when one is missing (a
// first run), with a progress line at least every ten seconds; a later run skips it.
func (d *demo) buildTools(ctx context.Context) error {
	missing, err := testenv.MissingBinaries()
	if err != nil {
		return &stepError{step: "Find etcd, kube-apiserver and Vault", err: err}
	}
	if len(missing) == 0 {
		return nil
	}
	bin, _ := testenv.BinDir()
	title := fmt.Sprintf("Build %s from source (first run only: cached in %s)", strings.Join(missing, ", "), bin)
	return d.step(title, bin, func() (string, error) {
		if err := testenv.EnsureBinaries(ctx, indentWriter{d.out}); err != nil {
			return "", err
		}
		return "later runs skip this step", nil
	})
}

// withProgress runs f, printing line(elapsed) every testenv.ProgressInterval until it returns.
func (d *demo) withProgress(line func(time.Duration) string, f func() error) error {
	done := make(chan struct{})
	printed := make(chan struct{})
	// The printer is gone before withProgress returns: the step prints next, to the same
	// writer.
	defer func() {
		close(done)
		<-printed
	}()
	go func() {
		defer close(printed)
		start := time.Now()
		t := time.NewTicker(testenv.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(d.out, "    %s\n", line(time.Since(start).Round(time.Second)))
			}
		}
	}()
	return f()
}

// indentWriter writes each line it is given indented under the demo's current step.
type indentWriter struct{ w io.Writer }

func (w indentWriter) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	if _, err := io.WriteString(w.w, "    "+strings.ReplaceAll(s, "\n", "\n    ")+"\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}

// startEnv starts the kit's testenv control plane in the state directory; the tools exist by now.
func (d *demo) startEnv(ctx context.Context) (string, error) {
	env, err := testenv.Start(ctx, testenv.Options{Dir: d.path("cluster"), StartTimeout: 3 * time.Minute, Progress: indentWriter{d.out}})
	if err != nil {
		return "", err
	}
	d.env = env
	if err := d.procs.recordChildren(); err != nil {
		return "", err
	}
	if err := env.WriteEnvFile(d.path("env")); err != nil {
		return "", err
	}
	return fmt.Sprintf("kube-apiserver %s, Vault %s", env.APIServerURL, env.VaultAddr), nil
}

// applyDefault applies deploy/default through an overlay that sets what deploy/default says a
// site sets: Vault's address (the images are not used: the demo runs the binaries).
func (d *demo) applyDefault(ctx context.Context) (string, error) {
	if err := site.ApplyDefault(ctx, d.logTo("kubectl"), d.env, d.path("deploy")); err != nil {
		return "", err
	}
	return "CRDs, namespace " + systemNamespace + ", ServiceAccounts, RBAC, tenant roles, admission policies, Deployments (which the demo runs as processes)", nil
}

// configureVault runs deploy/vault/configure-kubernetes-auth.sh against the local API server.
func (d *demo) configureVault(ctx context.Context) (string, error) {
	if err := site.ConfigureVaultAuth(ctx, d.logTo("vault-setup"), d.env, d.path("vault-setup"), "clusterpki-demo-vault-token-reviewer"); err != nil {
		return "", err
	}
	return "roles clusterpki-ca-operator and clusterpki-cert-operator, policies from deploy/vault/*.hcl", nil
}

// logTo runs commands for the site package with their output appended to logs/<log>.log.
func (d *demo) logTo(log string) site.Run {
	return func(ctx context.Context, extraEnv []string, name string, args ...string) error {
		return d.command(ctx, log, extraEnv, name, args...)
	}
}

// kubectl runs kubectl as the local control plane's administrator, output to logs/kubectl.log.
func (d *demo) kubectl(ctx context.Context, args ...string) error {
	return d.command(ctx, "kubectl", nil, "kubectl", append([]string{"--kubeconfig=" + d.env.Kubeconfig}, args...)...)
}

// command runs a command to completion, appending its output to logs/<log>.log; the error carries
// the output's tail.
func (d *demo) command(ctx context.Context, log string, extraEnv []string, name string, args ...string) error {
	_, err := d.runOutput(ctx, log, extraEnv, name, args...)
	return err
}

// runOutput is command that also returns the command's standard output.
func (d *demo) runOutput(ctx context.Context, log string, extraEnv []string, name string, args ...string) (string, error) {
	logPath := d.logPath(log)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s $ %s %s\n", time.Now().Format(time.RFC3339), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, both bytes.Buffer
	cmd.Stdout = io.MultiWriter(f, &stdout, &both)
	cmd.Stderr = io.MultiWriter(f, &both)
	if err := cmd.Run(); err != nil {
		return stdout.String(), &stepError{
			step: name + " " + strings.Join(args, " "),
			log:  logPath,
			err:  fmt.Errorf("%w\n%s", err, indent(lastLines(both.String(), 15))),
		}
	}
	return stdout.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
