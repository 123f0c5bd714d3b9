package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// TestRotateRoot runs the demo with --rotate-root, in this process so that it can look at what
// the roll saw: both operators, the usual proof, then the guest cluster (3 etcd members, 2
// kube-apiservers on Certificates of their own) rolled through a real root rotation while the
// prober, trusting the old root only, asks it for its namespaces every 200ms. It asserts that
// no request failed, that every etcd member was healthy after every restart, that every
// component was restarted for the bundle, for its re-issued Secrets and for the new root
// alone, that the rotation went
// Trusting → Moving → Overlap (for at least rotationOverlap) → Completed with status.root = the
// new root, and that the files every component runs on chain to the new root alone.
func TestRotateRoot(t *testing.T) {
	t.Parallel() // mostly waiting: it overlaps TestDemo's stand-in builds
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("the demo needs kubectl on PATH: %v", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	opts := options{
		dir: filepath.Join(tmp, "state"), binDir: filepath.Join(tmp, "bin"), rebuild: true,
		namespace: "tenant-a", exit: true, rotateRoot: true, timeout: 8 * time.Minute,
	}
	if dir := os.Getenv("CLUSTERPKI_DEMO_BIN_DIR"); dir != "" {
		opts.binDir, opts.rebuild = dir, false
	}
	var out bytes.Buffer
	d := &demo{opts: opts, root: root, out: &out}
	start := time.Now()
	err = d.run()
	t.Logf("demo --rotate-root output (%v):\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		for _, l := range []string{"ca-operator", "cert-operator", "guest-etcd-0", "guest-kube-apiserver-0", "guest-kube-apiserver-1"} {
			t.Logf("--- %s.log:\n%s", l, testenv.Tail(filepath.Join(opts.dir, "logs", l+".log"), 30))
		}
		t.Fatalf("demo --rotate-root: %v", err)
	}
	for _, want := range []string{SuccessMarker, RotationSuccessMarker} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo did not print %q", want)
		}
	}
	rep := d.rotation
	if rep == nil {
		t.Fatal("no rotation report")
	}

	// Not one request failed, and there were requests all along: trusting the old root only
	// during the rotation, the new root only after it.
	for _, f := range rep.failures {
		t.Errorf("request at +%s failed: %v", since(rep.annotated, f.at), f.err)
	}
	if rep.oldRoot == "" || rep.newRoot == "" || rep.oldRoot == rep.newRoot {
		t.Fatalf("old root %q, new root %q: want two different roots", rep.oldRoot, rep.newRoot)
	}
	rotation := rep.phases[len(rep.phases)-1].at.Sub(rep.annotated)
	if minimum := int(rotation / probeInterval / 2); rep.byTrust[rep.oldRoot] < minimum {
		t.Errorf("%d requests answered trusting the old root only in the %v of the rotation, want at least %d", rep.byTrust[rep.oldRoot], rotation, minimum)
	}
	if rep.byTrust[rep.newRoot] < newRootProbes {
		t.Errorf("%d requests answered trusting the new root only, want at least %d", rep.byTrust[rep.newRoot], newRootProbes)
	}
	if len(rep.served) != guestAPIServers || slices.Contains(rep.served, 0) {
		t.Errorf("connections per kube-apiserver %v: want each to have served", rep.served)
	}

	// No Warning event in the namespace, on the CA or any Certificate.
	for _, w := range rep.warnings {
		t.Errorf("Warning event: %s", w)
	}
	for _, reason := range []string{"RootRotationStarted", "TrustPublished", "IssuanceMoved", "RootRotationOverlap", "RootRetired"} {
		if !strings.Contains(rep.events, reason) {
			t.Errorf("the CA's events %q: no %s", rep.events, reason)
		}
	}

	// Every etcd member healthy before and after every restart.
	if countHealthy(rep.initialHealth) != guestEtcdMembers {
		t.Errorf("etcd health before the rotation: %q", rep.initialHealth)
	}
	restartedFor := map[string][]string{}
	for i, r := range rep.restarts {
		if i > 0 {
			if prev := rep.restarts[i-1]; r.at.Before(prev.at.Add(prev.took)) {
				t.Errorf("%s restarted at %v, before %s was back (%v + %v): not one at a time", r.component, r.at, prev.component, prev.at, prev.took)
			}
		}
		if len(r.etcdHealth) != guestEtcdMembers || countHealthy(r.etcdHealth) != guestEtcdMembers {
			t.Errorf("after restarting %s (%s): etcd health %q", r.component, r.why, r.etcdHealth)
		}
		restartedFor[r.component] = append(restartedFor[r.component], r.why)
	}
	// Every component got the bundle and its re-issued Secrets (in one restart or two), then
	// the new root alone.
	g := d.guest
	for _, c := range g.components() {
		why := strings.Join(restartedFor[c.name], "; ")
		if !strings.Contains(why, "trust 1 → 2 root(s)") || !strings.Contains(why, "re-issued") || !strings.HasSuffix(why, "trust 2 → 1 root(s)") {
			t.Errorf("%s restarted for %q, want for the bundle, for its re-issued Secrets, then for the new root alone", c.name, why)
		}
	}

	// The phases in order, Overlap lasting at least rotationOverlap.
	var seen []v1alpha1.RootRotationPhase
	at := map[v1alpha1.RootRotationPhase]time.Time{}
	for _, p := range rep.phases {
		seen = append(seen, p.phase)
		at[p.phase] = p.at
	}
	order := []v1alpha1.RootRotationPhase{v1alpha1.RootRotationPreparing, v1alpha1.RootRotationTrusting, v1alpha1.RootRotationMoving,
		v1alpha1.RootRotationOverlap, v1alpha1.RootRotationRetiring, v1alpha1.RootRotationCompleted}
	last := -1
	for _, p := range seen {
		i := slices.Index(order, p)
		if i <= last {
			t.Errorf("phases %v: not in the order %v", seen, order)
			break
		}
		last = i
	}
	for _, p := range []v1alpha1.RootRotationPhase{v1alpha1.RootRotationTrusting, v1alpha1.RootRotationMoving, v1alpha1.RootRotationOverlap, v1alpha1.RootRotationCompleted} {
		if !slices.Contains(seen, p) {
			t.Errorf("phases %v: no %s", seen, p)
		}
	}
	end := at[v1alpha1.RootRotationRetiring]
	if end.IsZero() {
		end = at[v1alpha1.RootRotationCompleted]
	}
	// Seen from here (a watch's delay on either end), and as the status tells it.
	overlap, _ := time.ParseDuration(guestRotationOverlap)
	if seen := end.Sub(at[v1alpha1.RootRotationOverlap]); seen < overlap-2*time.Second {
		t.Errorf("Overlap lasted %v, want at least %v", seen, overlap)
	}

	// The CA: Completed, status.root is the new root, the trust bundle the new root alone.
	ca := rep.finalCA
	rr := ca.Status.RootRotation
	if rr == nil || rr.Phase != v1alpha1.RootRotationCompleted || rr.NewRoot == nil || rr.NewRoot.FingerprintSHA256 != rep.newRoot ||
		rr.OldRoot == nil || rr.OldRoot.FingerprintSHA256 != rep.oldRoot {
		t.Errorf("status.rootRotation %+v: want Completed from the old to the new root", rr)
	}
	if rr != nil && (rr.OverlapEnd == nil || rr.CompletionTime == nil || rr.CompletionTime.Before(rr.OverlapEnd)) {
		t.Errorf("status.rootRotation overlapEnd %v, completionTime %v: want completed after the overlap ended", rr.OverlapEnd, rr.CompletionTime)
	}
	if ca.Status.Root == nil || ca.Status.Root.FingerprintSHA256 != rep.newRoot {
		t.Errorf("status.root %+v, want the new root %s", ca.Status.Root, rep.newRoot)
	}
	if bundle, err := contract.TrustBundle(ca); err != nil || strings.Join(contract.Fingerprints(bundle), ",") != rep.newRoot {
		t.Errorf("status.trustBundle %v (%v), want the new root alone", contract.Fingerprints(bundle), err)
	}
	if apimeta.IsStatusConditionTrue(ca.Status.Conditions, v1alpha1.ConditionRootRotating) {
		t.Errorf("condition RootRotating still True after Completed")
	}
	if !strings.Contains(rep.getCA, "Completed") || !strings.Contains(rep.getCA, rep.newRoot) {
		t.Errorf("kubectl get pkica -o wide shows neither Completed nor the new root:\n%s", rep.getCA)
	}
	if !strings.Contains(rep.namespaces, "kube-system") {
		t.Errorf("kubectl get namespaces trusting the new root only:\n%s", rep.namespaces)
	}

	// What the components run on now: each certificate chains to the new root alone; the
	// prober's kubeconfig trusts the new root alone.
	newRoot := x509.NewCertPool()
	for _, r := range mustParse(t, filepath.Join(g.dir, "prober", "ca.crt")) {
		if contract.Fingerprint(r) != rep.newRoot {
			t.Errorf("the prober trusts %s, want the new root %s alone", contract.Fingerprint(r), rep.newRoot)
		}
		newRoot.AddCert(r)
	}
	for _, c := range g.components() {
		for _, r := range mustParse(t, c.file("ca.crt")) {
			if contract.Fingerprint(r) != rep.newRoot {
				t.Errorf("%s trusts %s, want the new root %s alone", c.name, contract.Fingerprint(r), rep.newRoot)
			}
		}
		for _, s := range c.secrets {
			chain := mustParse(t, c.file(s+".crt"))
			inter := x509.NewCertPool()
			for _, ic := range chain[1:] {
				inter.AddCert(ic)
			}
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: newRoot, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("%s runs on %s, which does not chain to the new root: %v", c.name, s, err)
			}
		}
	}
	cfg, err := clientcmd.LoadFromFile(rep.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if ca := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster].CertificateAuthority; ca != filepath.Join(g.dir, "prober", "ca.crt") {
		t.Errorf("the prober's kubeconfig trusts %s", ca)
	}
}

func mustParse(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := contract.ParseCertificates(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return certs
}
