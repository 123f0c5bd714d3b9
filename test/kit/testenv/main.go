package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// Main starts one environment for a test package, runs setup (for example
// InstallCRDs), then the tests, then stops the environment, and returns the
// exit code for os.Exit. Setup keeps the *Env for the tests. If the start or
// setup fails it prints why, with the programs' log tails, and returns 1:
// tests that need the environment never skip silently.
//
//	func TestMain(m *testing.M) {
//		os.Exit(testenv.Main(m, func(e *testenv.Env) error { env = e; return nil }))
//	}
func Main(m *testing.M, setup func(*Env) error) int {
	// TestMain runs before the testing flags are parsed; -v is needed below.
	if !flag.Parsed() {
		flag.Parse()
	}
	dir, err := os.MkdirTemp("", "clusterpki-testenv-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// A first run builds the tools here, with progress on standard error and no deadline;
	// Start then bounds each program's start-up on its own.
	if err := EnsureBinaries(context.Background(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	start := time.Now()
	env, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: start failed: %v\n%s", err, LogTails(dir, 40))
		return 1
	}
	defer env.Stop()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "testenv: started in %v (API server %s, Vault %s)\n",
			time.Since(start).Round(time.Millisecond), env.APIServerURL, env.VaultAddr)
	}
	if setup != nil {
		if err := setup(env); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: setup failed: %v\n%s", err, env.LogTails(40))
			return 1
		}
	}
	return m.Run()
}
