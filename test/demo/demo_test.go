package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// standInBuild is how long the stand-in for scripts/build-tools.sh takes per tool in TestDemo:
// the three together last longer than demoTimeout, the demo's --timeout, as a cold build of the
// real tools (half an hour) lasts longer than the demo's default.
const (
	standInBuild = 35 * time.Second
	demoTimeout  = 90 * time.Second
)

// TestDemo runs the demo as `make demo` does, but non-interactively (DEMO_EXIT=1), with its
// own state directory and freshly built operators, and checks that the second API server,
// booted from the issued certificates, answered `kubectl get namespaces` for the issued admin
// certificate.
//
// It runs the first run's path: the tool cache (CLUSTERPKI_BIN) is an empty folder and the
// build step is a stand-in that takes standInBuild per tool before it links the real binary in,
// so the builds together outlast --timeout. The demo must build them outside that deadline,
// showing which tool builds and for how long at least every ten seconds, and then succeed.
func TestDemo(t *testing.T) {
	t.Parallel() // mostly the stand-in builds' waiting: it overlaps TestRotateRoot
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("the demo needs kubectl on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "clusterpki-demo")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build the demo: %v\n%s", err, out)
	}
	state := filepath.Join(tmp, "state")

	// The operators are built afresh, unless CLUSTERPKI_DEMO_BIN_DIR names a folder that holds
	// them already (for example bin/ after make build).
	args := []string{"--dir", state, "--bin-dir", filepath.Join(tmp, "bin"), "--rebuild"}
	if dir := os.Getenv("CLUSTERPKI_DEMO_BIN_DIR"); dir != "" {
		args = []string{"--dir", state, "--bin-dir", dir}
	}
	args = append(args, "--timeout", demoTimeout.String())
	toolBin := filepath.Join(tmp, "tools")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DEMO_EXIT=1", "CLUSTERPKI_BIN="+toolBin,
		testenv.BuildToolsEnv+"="+writeStandInBuild(t, tmp, toolBin))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("demo output (%v):\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		for _, l := range []string{"ca-operator", "cert-operator", "proof-etcd", "proof-kube-apiserver"} {
			t.Logf("--- %s.log:\n%s", l, testenv.Tail(filepath.Join(state, "logs", l+".log"), 30))
		}
		t.Fatalf("demo: %v", err)
	}
	got := out.String()
	if !strings.Contains(got, SuccessMarker) {
		t.Fatalf("the demo did not print %q", SuccessMarker)
	}
	// The builds outlasted --timeout, and each said what it built, for how long, and that it
	// happens once, every ten seconds.
	if !strings.Contains(got, "(first run only: cached in "+toolBin+")") {
		t.Errorf("the demo did not announce the tool build as a first-run step")
	}
	for _, tool := range testenv.Tools {
		path, _ := testenv.Binary(tool)
		name := filepath.Base(path)
		ticks := strings.Count(got, "building "+name+": ")
		if want := int(standInBuild/testenv.ProgressInterval) - 1; ticks < want || !strings.Contains(got, "(once; cached afterwards)") {
			t.Errorf("%d progress lines for the %v build of %s, want at least %d saying it happens once", ticks, standInBuild, name, want)
		}
		if _, err := os.Stat(filepath.Join(toolBin, name)); err != nil {
			t.Errorf("the tool cache holds no %s after the run: %v", name, err)
		}
	}
	// The answer of `kubectl get namespaces` is printed after its command line.
	_, answer, _ := strings.Cut(got, "kubectl get namespaces")
	for _, ns := range []string{"default", "kube-system"} {
		if !strings.Contains(answer, ns) {
			t.Errorf("the second API server's answer lists no namespace %s", ns)
		}
	}

	// The client certificate that got the answer is the one cert-operator issued: CN of the
	// admin example, in system:masters, chaining through the issuing CA to the published root.
	cfg, err := clientcmd.LoadFromFile(filepath.Join(state, "proof", "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	user := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	chainPEM, err := os.ReadFile(user.ClientCertificate)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := os.ReadFile(cluster.CertificateAuthority)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := contract.ParseCertificates(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the admin certificate does not chain to the CA's root: %v", err)
	}
	if leaf.Subject.CommonName != "tenant-a-admin" || !slices.Contains(leaf.Subject.Organization, "system:masters") {
		t.Errorf("admin certificate subject %v, want CN=tenant-a-admin, O=system:masters", leaf.Subject)
	}
	if leaf.Issuer.CommonName == leaf.Subject.CommonName || len(chain) < 2 {
		t.Errorf("admin certificate chain has %d certificates, want leaf and issuing CA", len(chain))
	}

	// Everything stopped: no pid files left, the demo's programs gone.
	for _, f := range []string{"pids", "demo.pid"} {
		if _, err := os.Stat(filepath.Join(state, f)); err == nil {
			t.Errorf("%s still exists after the demo exited", f)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if cmdline, err := os.ReadFile(p); err == nil && bytes.Contains(cmdline, []byte(state)) {
			t.Errorf("still running after the demo exited: %s", bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")))
		}
	}
}

// writeStandInBuild writes a stand-in for scripts/build-tools.sh into dir: given a tool's name it
// waits standInBuild, then links the tool's real binary (built by `make tools`) into toolBin
// under the name testenv looks for. It returns the script's path.
func writeStandInBuild(t *testing.T, dir, toolBin string) string {
	t.Helper()
	var cases strings.Builder
	for _, tool := range testenv.Tools {
		real, err := testenv.Binary(tool)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cases, "  %s) src=%q ;;\n", tool, real)
	}
	script := fmt.Sprintf(`#!/usr/bin/env bash
# Stand-in for scripts/build-tools.sh in TestDemo: as slow as a build, without building.
set -euo pipefail
case "$1" in
%s  *) echo "unknown tool $1" >&2; exit 1 ;;
esac
echo "stand-in build of $1: waiting %d seconds"
sleep %d
mkdir -p %q
ln -sf "$src" %q/"$(basename "$src")"
`, cases.String(), int(standInBuild.Seconds()), int(standInBuild.Seconds()), toolBin, toolBin)
	path := filepath.Join(dir, "stand-in-build-tools.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
