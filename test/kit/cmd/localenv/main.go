// Command localenv runs the clusterpki local control plane (etcd,
// kube-apiserver, Vault) in the foreground until SIGINT or SIGTERM.
//
//	localenv up --dir DIR [--crds DIR]
//
// It writes DIR/kubeconfig and, once everything is ready, DIR/env with shell
// exports of KUBECONFIG, VAULT_ADDR, VAULT_TOKEN and CLUSTERPKI_LOCAL_DIR.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "up" {
		fmt.Fprintln(os.Stderr, "usage: localenv up --dir DIR [--crds DIR]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("localenv up", flag.ExitOnError)
	dir := fs.String("dir", "", "work directory (data, certificates, logs, kubeconfig, env); required")
	crds := fs.String("crds", "", "folder of CRD *.yaml to install (default: <repo>/deploy/crds if it exists)")
	_ = fs.Parse(os.Args[2:])
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	if err := up(*dir, *crds); err != nil {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
}

func up(dir, crds string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	envFile := filepath.Join(dir, "env")
	_ = os.Remove(envFile) // written again only once everything is ready
	if crds == "" {
		if root, err := testenv.RepoRoot(); err == nil {
			crds = filepath.Join(root, "deploy", "crds")
			if _, err := os.Stat(crds); err != nil {
				crds = ""
			}
		}
	}

	start := time.Now()
	env, err := testenv.Start(ctx, testenv.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "localenv: stopping")
		_ = os.Remove(envFile)
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localenv:", err)
		}
		fmt.Fprintln(os.Stderr, "localenv: stopped")
	}()
	if crds != "" {
		if yamls, _ := filepath.Glob(filepath.Join(crds, "*.yaml")); len(yamls) > 0 {
			if err := env.InstallCRDs(ctx, crds); err != nil {
				return err
			}
			fmt.Printf("installed %d CRD file(s) from %s\n", len(yamls), crds)
		}
	}
	if err := env.WriteEnvFile(envFile); err != nil {
		return err
	}
	fmt.Printf(`clusterpki local environment ready in %v
  kube-apiserver  %s   (logs %s)
  vault           %s   (logs %s)
  kubeconfig      %s
  env             %s   (source it: KUBECONFIG, VAULT_ADDR, VAULT_TOKEN)
stop with SIGINT or SIGTERM (pid %d)
`, time.Since(start).Round(time.Millisecond),
		env.APIServerURL, filepath.Join(env.Dir, "kube-apiserver.log"),
		env.VaultAddr, filepath.Join(env.Dir, "vault.log"),
		env.Kubeconfig, envFile, os.Getpid())
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := env.Check(); err != nil {
				return err
			}
		}
	}
}
