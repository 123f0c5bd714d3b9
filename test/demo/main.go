// Command demo is `make demo`: clusterpki's whole job on one machine, then the proof that the
// certificates it issued are real.
//
// It builds the operators if they are missing, starts a local etcd, kube-apiserver and Vault
// (test/kit/testenv), applies deploy/default with kubectl (CRDs, RBAC, ServiceAccounts), configures
// Vault's Kubernetes auth with deploy/vault/configure-kubernetes-auth.sh, runs both operators as
// local processes the way their Deployments describe them (as their ServiceAccounts, logging in
// to Vault with their tokens), applies deploy/examples and waits until every object is Ready.
// Then it boots a second etcd and kube-apiserver from nothing but the issued certificates and
// runs `kubectl get namespaces` against it with the issued system:masters certificate.
// With --rotate-root it then rotates the CA's root under a guest cluster of three etcd members
// and two kube-apiservers on Certificates of their own, rolled one component at a time while
// a prober that trusts the old root only keeps asking it for its namespaces (rotate.go).
//
// It keeps running until Ctrl-C (or exits after the proof with --exit or DEMO_EXIT=1) and stops
// everything it started. Everything lives in the state directory (default .local/demo):
// logs/, the kubeconfigs, the pid file that `make demo-down` reads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/test/kit/pod"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// Names from deploy/ and deploy/examples that the demo relies on, in one place.
const (
	systemNamespace = "clusterpki-system" // where deploy/default installs the operators
	caName          = "tenant-a"          // the CertificateAuthority in deploy/examples
	caConfigMap     = caName + "-ca"      // where the ca-operator publishes its root (key ca.crt)

	secretAPIServer     = "kube-apiserver-tls"
	secretEtcdClient    = "kube-apiserver-etcd-client-tls"
	secretKubeletClient = "kube-apiserver-kubelet-client-tls"
	secretSASigner      = "service-account-signer"
	secretEtcdServer    = "etcd-server-tls"
	secretEtcdPeer      = "etcd-peer-tls"
	secretAdmin         = "admin-kubeconfig-cert"

	// SuccessMarker is printed once the second API server answered the issued admin certificate.
	SuccessMarker = "PROOF OK: a kube-apiserver booted from clusterpki certificates answered the issued admin certificate"
)

var operators = []string{"ca-operator", "cert-operator"}

type options struct {
	dir       string // state directory
	binDir    string // where the operator binaries are (built there when missing)
	namespace string // namespace deploy/examples is applied to
	exit      bool   // exit after the proof instead of waiting for Ctrl-C
	rebuild   bool   // build the operators even if present
	// rotateRoot runs the root rotation proof after the usual one (see rotate.go).
	rotateRoot bool
	timeout    time.Duration
}

func main() {
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	var o options
	exitDefault, _ := strconv.ParseBool(os.Getenv("DEMO_EXIT"))
	flag.StringVar(&o.dir, "dir", filepath.Join(root, ".local", "demo"), "state directory (removed and made afresh on start)")
	flag.StringVar(&o.binDir, "bin-dir", filepath.Join(root, "bin"), "folder of the ca-operator and cert-operator binaries (make build BIN=... when missing)")
	flag.StringVar(&o.namespace, "namespace", "tenant-a", "namespace the examples are applied to")
	flag.BoolVar(&o.exit, "exit", exitDefault, "exit 0 after the proof instead of running until Ctrl-C (also DEMO_EXIT=1)")
	flag.BoolVar(&o.rebuild, "rebuild", false, "build the operators even if their binaries exist")
	flag.BoolVar(&o.rotateRoot, "rotate-root", false, "after the proof, rotate the CA's root under a running guest cluster (3 etcd members, 2 kube-apiservers) rolled one component at a time, while a prober trusting the old root only asks it for its namespaces every 200ms")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for everything after the builds, up to and including the proof and, with --rotate-root, the rotation (a first build of the operators and tools has no limit)")
	down := flag.Bool("down", false, "stop a demo left running in --dir and exit")
	flag.Parse()
	if o.dir, err = filepath.Abs(o.dir); err == nil {
		o.binDir, err = filepath.Abs(o.binDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if *down {
		if err := stopLeftovers(o.dir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
		return
	}
	d := &demo{opts: o, root: root, out: os.Stdout}
	if err := d.run(); err != nil {
		os.Exit(1)
	}
}

// demo is one run.
type demo struct {
	opts options
	root string
	out  io.Writer

	env       *testenv.Env
	procs     *procGroup
	operators []*pod.Pod
	guest     *guest          // --rotate-root: the guest cluster
	rotation  *rotationReport // --rotate-root: what the rotation proof saw
	steps     int
	started   time.Time
}

func (d *demo) path(elem ...string) string {
	return filepath.Join(append([]string{d.opts.dir}, elem...)...)
}

func (d *demo) logPath(name string) string { return d.path("logs", name+".log") }

// stepError is a failed step: which one, why, and the log that tells more.
type stepError struct {
	step, log string
	err       error
}

func (e *stepError) Error() string {
	s := fmt.Sprintf("step %q: %v", e.step, e.err)
	if e.log != "" {
		s += "\n  log: " + e.log
	}
	return s
}

func (e *stepError) Unwrap() error { return e.err }

// step runs f as step title, printing what it does and how long it took. f returns a short
// detail for the summary line; log names the file that holds the step's own output.
func (d *demo) step(title, log string, f func() (string, error)) error {
	d.steps++
	fmt.Fprintf(d.out, "[%d] %s ...\n", d.steps, title)
	start := time.Now()
	detail, err := f()
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(d.out, "    FAILED after %v\n", took)
		var se *stepError
		if errors.As(err, &se) {
			return err
		}
		return &stepError{step: title, log: log, err: err}
	}
	line := fmt.Sprintf("    ok  %v", took)
	if detail != "" {
		line += "  " + detail
	}
	fmt.Fprintln(d.out, line)
	return nil
}

// run runs the demo; a failure is printed before everything is stopped.
func (d *demo) run() (err error) {
	d.started = time.Now()
	defer func() {
		if err != nil && d.procs == nil { // nothing started yet
			fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		}
	}()
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()

	if err := d.prepareDir(); err != nil {
		return err
	}
	d.procs = newProcGroup(d.path("pids"))
	defer d.shutdown()
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n\n", err)
		}
	}()
	fmt.Fprintf(d.out, "clusterpki demo: state and logs in %s\n", d.opts.dir)

	if err := d.setUp(sigCtx); err != nil {
		if sigCtx.Err() != nil {
			return errors.New("interrupted")
		}
		return err
	}
	fmt.Fprintf(d.out, "\nclusterpki demo done in %v.\n", time.Since(d.started).Round(100*time.Millisecond))
	if d.opts.exit {
		return nil
	}
	fmt.Fprintln(d.out, "Everything keeps running; press Ctrl-C to stop it (or run `make demo-down` from another terminal).")
	return d.wait(sigCtx)
}

// setUp runs every step up to and including the proof. The builds come first and have no
// deadline (a cold build of the tools takes many minutes, once); --timeout starts after them.
func (d *demo) setUp(sigCtx context.Context) error {
	if err := d.step("Build the operators", d.logPath("build"), func() (string, error) { return d.build(sigCtx) }); err != nil {
		return err
	}
	if err := d.buildTools(sigCtx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(sigCtx, d.opts.timeout)
	defer cancel()
	if err := d.step("Start etcd, kube-apiserver and Vault", d.path("cluster"), func() (string, error) { return d.startEnv(ctx) }); err != nil {
		return err
	}
	if err := d.step("Install CRDs, RBAC and admission policies: kubectl apply --server-side -k deploy/default", d.logPath("kubectl"), func() (string, error) { return d.applyDefault(ctx) }); err != nil {
		return err
	}
	var vaultMode string
	if err := d.step("Configure Vault's Kubernetes auth (deploy/vault/configure-kubernetes-auth.sh)", d.logPath("vault-setup"), func() (string, error) {
		var err error
		vaultMode, err = d.configureVault(ctx)
		return vaultMode, err
	}); err != nil {
		return err
	}
	if err := d.step("Run ca-operator and cert-operator", d.logPath("ca-operator"), func() (string, error) { return d.startOperators(ctx) }); err != nil {
		return err
	}
	if err := d.step("Apply deploy/examples to namespace "+d.opts.namespace+" and wait until all are Ready", d.logPath("kubectl"), func() (string, error) { return d.applyExamples(ctx) }); err != nil {
		return err
	}
	if err := d.printTable(ctx); err != nil {
		return &stepError{step: "Print the certificates", err: err}
	}
	var answer *proofResult
	if err := d.step("The proof: boot a second etcd and kube-apiserver from the issued certificates", d.logPath("proof-kube-apiserver"), func() (string, error) {
		var err error
		if answer, err = d.proof(ctx); err != nil {
			return "", err
		}
		return "kube-apiserver answered at " + answer.server, nil
	}); err != nil {
		return err
	}
	d.printProof(answer)
	if d.opts.rotateRoot {
		if err := d.proveRotation(ctx); err != nil {
			return err
		}
	}
	d.printWhere()
	return nil
}

// proveRotation is --rotate-root: the guest cluster's Certificates, the guest cluster, then the
// root rotation it keeps answering through (rotate.go).
func (d *demo) proveRotation(ctx context.Context) error {
	if err := d.step("Issue a guest cluster's certificates (3 etcd members, 2 kube-apiservers) and set rotationOverlap "+guestRotationOverlap, d.logPath("kubectl"), func() (string, error) {
		return d.issueGuestCertificates(ctx)
	}); err != nil {
		return err
	}
	if err := d.step("Boot the guest cluster from them, a TCP forwarder in front of its kube-apiservers, and a prober that trusts the old root only", d.logPath("guest-kube-apiserver-0"), func() (string, error) {
		return d.bootGuest(ctx)
	}); err != nil {
		return err
	}
	err := d.step("Rotate the root (kubectl annotate ... "+v1alpha1.AnnotationRotateRoot+"=...) and roll the guest cluster one component at a time", d.logPath("kubectl"), func() (string, error) {
		rep, err := d.rotateRoot(ctx)
		d.rotation = rep
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d restarts, %d requests, %d failed", len(rep.restarts), rep.probes, len(rep.failures)), nil
	})
	d.printRotation(d.rotation)
	return err
}

// prepareDir stops a demo left running in the state directory and makes it afresh.
func (d *demo) prepareDir() error {
	if pid, alive := demoPID(d.opts.dir); alive && pid != os.Getpid() {
		return fmt.Errorf("a demo is already running from %s (pid %d); stop it with Ctrl-C there or `make demo-down`", d.opts.dir, pid)
	}
	if err := stopLeftovers(d.opts.dir, io.Discard); err != nil {
		return err
	}
	// Start afresh, but never remove a folder that is not a demo's.
	if entries, err := os.ReadDir(d.opts.dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(d.opts.dir, "logs")); err != nil {
			return fmt.Errorf("%s is not empty and not a demo's state directory; choose another --dir", d.opts.dir)
		}
	}
	if err := os.RemoveAll(d.opts.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(d.path("logs"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(d.path("demo.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// wait keeps everything running until a signal, reporting a program that dies.
func (d *demo) wait(ctx context.Context) error {
	refresh := time.NewTicker(tokenRefresh)
	defer refresh.Stop()
	check := time.NewTicker(2 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(d.out, "\nstopping ...")
			return nil
		case <-check.C:
			if err := d.env.Check(); err != nil {
				return err
			}
			if err := d.procs.check(); err != nil {
				return err
			}
		case <-refresh.C:
			if err := d.refreshTokens(ctx); err != nil {
				fmt.Fprintf(d.out, "warning: refreshing the operators' ServiceAccount tokens: %v\n", err)
			}
		}
	}
}

// shutdown stops everything the demo started, newest first.
func (d *demo) shutdown() {
	start := time.Now()
	if d.guest != nil {
		d.guest.stop()
	}
	d.procs.stopAll()
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			fmt.Fprintf(d.out, "warning: stopping the control plane: %v\n", err)
		}
	}
	_ = os.Remove(d.path("pids"))
	_ = os.Remove(d.path("demo.pid"))
	fmt.Fprintf(d.out, "stopped everything the demo started (%v); state stays in %s\n", time.Since(start).Round(100*time.Millisecond), d.opts.dir)
}

func (d *demo) printWhere() {
	guest := "" // --rotate-root only: the guest cluster, through the forwarder
	if d.guest != nil && d.guest.prober != nil {
		guest = fmt.Sprintf("  guest cluster, issued admin cert        %s  (--rotate-root)\n", d.guest.prober.kubeconfig)
	}
	fmt.Fprintf(d.out, `
Where things are:
  local control plane, admin kubeconfig   %s
  second API server, issued admin cert    %s
%s  KUBECONFIG, VAULT_ADDR, VAULT_TOKEN     %s  (source it)
  logs                                    %s/*.log, %s/*.log
Try: KUBECONFIG=%s kubectl get pkica,pkicert -n %s
     PATH="$PWD/bin:$PATH" KUBECONFIG=%s kubectl clusterpki status -n %s   (after make plugin)
`, d.env.Kubeconfig, d.path("proof", "kubeconfig"), guest, d.path("env"),
		d.path("logs"), d.path("cluster"),
		relToCwd(d.env.Kubeconfig), d.opts.namespace, relToCwd(d.env.Kubeconfig), d.opts.namespace)
}

func relToCwd(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
