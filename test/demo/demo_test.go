package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusterpki/clusterpki/pkg/testenv"
)

// TestDemo runs the demo as `make demo` does, but non-interactively (DEMO_EXIT=1), with its
// own state directory and freshly built operators, and checks that the second API server,
// booted from the issued certificates, answered `kubectl get namespaces` for the issued admin
// certificate.
func TestDemo(t *testing.T) {
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
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DEMO_EXIT=1")
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
	chain, err := parseCerts(chainPEM)
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
