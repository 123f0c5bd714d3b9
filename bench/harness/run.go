package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

const (
	opNS       = "bench"          // watched by both operators (--namespace)
	baselineNS = "bench-baseline" // watched by neither: the baselines' objects live here
	warmupNS   = "bench-warmup"   // watched by neither: CAs that warm Vault up before the CA figures
	touchKey   = "bench.clusterpki.dev/touch"
)

// countingTransport counts the harness's own non-watch API requests.
type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("watch") != "true" {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// run is the state of one benchmark run.
type run struct {
	cfg      Config
	env      *testenv.Env
	kube     kubernetes.Interface
	client   versioned.Interface
	vault    *vaultapi.Client
	own      atomic.Int64 // the harness's own API requests
	certOp   *operator
	caOp     *operator
	res      *Results
	repoRoot string
}

// Run performs one benchmark run and writes its results to cfg.ResultsDir.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, res: newResults(cfg)}
	var err error
	if r.repoRoot = cfg.RepoRoot; r.repoRoot == "" {
		if r.repoRoot, err = testenv.RepoRoot(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.ResultsDir, 0o755); err != nil {
		return nil, err
	}
	work := cfg.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "clusterpki-bench-"); err != nil {
			return nil, err
		}
		if !cfg.KeepWorkDir {
			defer os.RemoveAll(work)
		}
	}
	cfg.logf("starting etcd, kube-apiserver and Vault in %s", work)
	env, err := testenv.Start(ctx, testenv.Options{Dir: filepath.Join(work, "env")})
	if err != nil {
		return nil, err
	}
	r.env = env
	defer env.Stop() //nolint:errcheck
	err = r.all(ctx, work)
	if r.certOp != nil {
		r.certOp.Stop()
	}
	if r.caOp != nil {
		r.caOp.Stop()
	}
	r.res.finish(err)
	if werr := r.res.write(cfg.ResultsDir); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		err = fmt.Errorf("%w (logs in %s)", err, work)
	}
	return r.res, err
}

func (r *run) all(ctx context.Context, work string) error {
	if err := r.setup(ctx, work); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"CA provisioning", r.caProvisioning},
		{"issuance", r.issuance},
		{"scale point " + fmt.Sprint(r.cfg.Certs), func(ctx context.Context) error { return r.scalePoint(ctx, r.cfg.Certs, nil) }},
		{"memory", r.memory},
		{"zero churn", r.churn},
		{"restart", r.restart},
	}
	if r.cfg.ScaleCerts > 0 {
		steps = append(steps, struct {
			name string
			f    func(context.Context) error
		}{"scale point " + fmt.Sprint(r.cfg.ScaleCerts), r.scaleUp})
	}
	for _, s := range steps {
		r.cfg.logf("phase: %s", s.name)
		t0 := time.Now()
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.cfg.logf("phase %s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

func (r *run) setup(ctx context.Context, work string) error {
	if err := r.env.InstallCRDs(ctx, filepath.Join(r.repoRoot, "deploy", "crds")); err != nil {
		return err
	}
	cfg := rest.CopyConfig(r.env.RESTConfig)
	cfg.QPS, cfg.Burst = 5000, 10000
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt: rt, n: &r.own} }
	var err error
	if r.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if r.client, err = versioned.NewForConfig(cfg); err != nil {
		return err
	}
	for _, ns := range []string{opNS, baselineNS, warmupNS} {
		if _, err := r.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if r.vault, err = r.env.VaultClient(); err != nil {
		return err
	}
	keepConnections(r.vault)
	tokens := map[string]string{}
	for _, name := range []string{"ca-operator", "cert-operator"} {
		policy, err := os.ReadFile(filepath.Join(r.repoRoot, "deploy", "vault", name+".hcl"))
		if err != nil {
			return err
		}
		if err := r.vault.Sys().PutPolicyWithContext(ctx, "clusterpki-"+name, string(policy)); err != nil {
			return err
		}
		tok, err := r.vault.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
			Policies: []string{"clusterpki-" + name}, TTL: "48h", DisplayName: "bench-" + name,
		})
		if err != nil {
			return err
		}
		tokens[name] = tok.Auth.ClientToken
	}
	r.res.Versions = versions(ctx, r.repoRoot, r.cfg.BinDir)
	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	r.res.LogDir = logDir
	for _, name := range []string{"ca-operator", "cert-operator"} {
		tokenFile := filepath.Join(work, name+".vault-token")
		if err := os.WriteFile(tokenFile, []byte(tokens[name]), 0o600); err != nil {
			return err
		}
		// The operator runs as its shipped Deployment runs it (arguments, environment, memory
		// limit); only addresses, auth and the namespace it watches are the bench's.
		env := []string{"VAULT_ADDR=" + r.env.VaultAddr, "VAULT_TOKEN=" + tokens[name], "CLUSTERPKI_VAULT_TOKEN=" + tokens[name]}
		flags := []string{"--kubeconfig=" + r.env.Kubeconfig, "--vault-addr=" + r.env.VaultAddr, "--vault-auth=token",
			"--vault-token-file=" + tokenFile, "--leader-elect=false", "--namespace=" + opNS}
		if name == "ca-operator" {
			flags = append(flags, "--vault-public-addr="+r.env.VaultAddr)
		}
		if name == "cert-operator" && r.cfg.ProfileDir != "" {
			flags = append(flags, "--profiling=true")
		}
		op, err := newOperator(ctx, r.repoRoot, name, filepath.Join(r.cfg.BinDir, name), work, logDir, env, flags)
		if err != nil {
			return err
		}
		r.res.Shipped[name] = shippedRecord{Manifest: op.manifest, Args: op.ContainerArgs, Env: op.ContainerEnv,
			MemoryLimitMiB: float64(op.MemoryLimitBytes) / (1 << 20)}
		if err := op.start(ctx); err != nil {
			return err
		}
		if name == "ca-operator" {
			r.caOp = op
		} else {
			r.certOp = op
		}
		r.res.OperatorArgs[name] = strings.Join(op.Args, " ")
	}
	return nil
}

// apiserverRequests returns the API server's non-watch request count.
func (r *run) apiserverRequests(ctx context.Context) (float64, error) {
	raw, err := r.env.KubeClient.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	s, err := parseText(strings.NewReader(string(raw)))
	if err != nil {
		return 0, err
	}
	total := s.sum("apiserver_request_total", nil)
	return total - s.sum("apiserver_request_total", map[string]string{"verb": "WATCH"}), nil
}

// counters is the state of every counter the harness compares between two moments.
type counters struct {
	cert, ca  snapshot
	apiserver float64
	own       int64
}

func (r *run) counters(ctx context.Context) (counters, error) {
	var c counters
	var err error
	if c.cert, err = r.certOp.metrics(ctx); err != nil {
		return c, err
	}
	if c.ca, err = r.caOp.metrics(ctx); err != nil {
		return c, err
	}
	c.own = r.own.Load()
	if c.apiserver, err = r.apiserverRequests(ctx); err != nil {
		return c, err
	}
	return c, nil
}

const (
	mCertVault     = "clusterpki_vault_requests_total"
	mCertWrites    = "clusterpki_certificate_api_writes_total"
	mCertIssued    = "clusterpki_certificate_issuances_total"
	mCAWrites      = "clusterpki_ca_operator_api_writes_total"
	mVault         = "clusterpki_vault_requests_total"
	mSyncCount     = "clusterpki_controller_sync_duration_seconds_count"
	mQueueDepth    = "clusterpki_controller_queue_depth"
	certController = "certificate"
	caController   = "certificateauthority"
)

func (r *run) caProvisioning(ctx context.Context) error {
	p := &r.res.CAProvisioning
	// The baseline calls Vault as the ca-operator does: with a token of its policy, so both
	// pay for the same ACL checks (a root token skips them).
	var vc *vaultapi.Client
	if !r.cfg.SkipBaselines {
		var err error
		if vc, err = r.baselineVault(ctx); err != nil {
			return err
		}
		// A fresh Vault makes its first PKI mounts slower than later ones; whichever run came
		// first would pay for that alone. A few CAs made the baseline's way, not measured, warm
		// it up for both.
		p.WarmupCAs = max(2, r.cfg.ProvisionCAs/5)
		if _, err := baselineCAs(ctx, r.kube, r.client, vc, r.env.VaultAddr, warmupNS, p.WarmupCAs, r.cfg.CAWorkers); err != nil {
			return fmt.Errorf("warm-up CAs: %w", err)
		}
	}
	before, err := r.counters(ctx)
	if err != nil {
		return err
	}
	op, err := provisionCAs(ctx, r.client, opNS, r.cfg.ProvisionCAs, r.cfg.Creators, r.cfg.PhaseTimeout)
	if err != nil {
		return err
	}
	after, err := r.counters(ctx)
	if err != nil {
		return err
	}
	p.Operator = op
	n := float64(r.cfg.ProvisionCAs)
	p.VaultRequestsPerCA = deltaBy(before.ca, after.ca, mVault, "operation", nil)
	for k, v := range p.VaultRequestsPerCA {
		p.VaultRequestsPerCA[k] = v / n
	}
	p.APIWritesPerCA = sumMap(deltaBy(before.ca, after.ca, mCAWrites, "kind", nil)) / n
	p.VaultSecondsPerCA = deltaBy(before.ca, after.ca, "clusterpki_vault_request_duration_seconds_sum", "operation", nil)
	for k, v := range p.VaultSecondsPerCA {
		p.VaultSecondsPerCA[k] = v / n
	}
	p.SyncsPerCA = sumMap(deltaBy(before.ca, after.ca, mSyncCount, "controller", map[string]string{"controller": caController})) / n
	p.SyncSecondsPerCA = sumMap(deltaBy(before.ca, after.ca, "clusterpki_controller_sync_duration_seconds_sum", "controller", map[string]string{"controller": caController})) / n
	if vc == nil {
		return nil
	}
	bl, err := baselineCAs(ctx, r.kube, r.client, vc, r.env.VaultAddr, baselineNS, r.cfg.ProvisionCAs, r.cfg.CAWorkers)
	if err != nil {
		return err
	}
	p.Baseline = &bl
	if bl.ThroughputPerS > 0 {
		p.Ratio = op.ThroughputPerS / bl.ThroughputPerS
	}
	return nil
}

// baselineVault returns a Vault client with a token of the ca-operator's policy, keeping a
// connection per worker as the operator's client does.
func (r *run) baselineVault(ctx context.Context) (*vaultapi.Client, error) {
	vc, err := r.env.VaultClient()
	if err != nil {
		return nil, err
	}
	tok, err := r.vault.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{"clusterpki-ca-operator"}, TTL: "48h", DisplayName: "bench-ca-baseline"})
	if err != nil {
		return nil, err
	}
	vc.SetToken(tok.Auth.ClientToken)
	keepConnections(vc)
	return vc, nil
}

// issuingCAs reads the sign path and root of the first n Ready CAs of the operator namespace.
func (r *run) issuingCAs(ctx context.Context, n int) (map[string]issuingCA, error) {
	out := map[string]issuingCA{}
	for i := range n {
		ca, err := r.client.ClusterpkiV1alpha1().CertificateAuthorities(opNS).Get(ctx, caName(i), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if len(ca.Status.Roles) == 0 {
			return nil, fmt.Errorf("CA %s lists no roles", ca.Name)
		}
		cm, err := r.kube.CoreV1().ConfigMaps(opNS).Get(ctx, contract.ConfigMapName(ca.Name), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		out[ca.Name] = issuingCA{signPath: ca.Status.Roles[0].SignPath, rootPEM: cm.Data[contract.TrustKey]}
	}
	return out, nil
}

func (r *run) issuance(ctx context.Context) error {
	t, err := newTracker(ctx, r.kube, r.client, opNS, r.cfg.Certs)
	if err != nil {
		return err
	}
	defer t.stop()
	before, err := r.counters(ctx)
	if err != nil {
		return err
	}
	cpu := r.startCPUProfile(ctx, "cpu-issuance.pprof")
	if err := createCertificates(ctx, r.client, t, opNS, 0, r.cfg.Certs, r.cfg.CAs, r.cfg.Creators, r.cfg.TTL); err != nil {
		return err
	}
	if err := t.wait(ctx, r.cfg.PhaseTimeout); err != nil {
		return err
	}
	if err := <-cpu; err != nil {
		return err
	}
	for _, p := range []string{"heap", "allocs", "mutex", "block"} {
		if err := r.saveProfile(ctx, p, p+"-issuance.pprof"); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second) // let the last status writes and events land in the counters
	after, err := r.counters(ctx)
	if err != nil {
		return err
	}
	is := &r.res.Issuance
	is.Operator = summarize(t.results())
	n := float64(r.cfg.Certs)
	is.VaultRequestsPerCert = map[string]float64{}
	for k, v := range deltaBy(before.cert, after.cert, mCertVault, "operation", nil) {
		is.VaultRequestsPerCert["cert-operator "+k] = v / n
	}
	for k, v := range deltaBy(before.ca, after.ca, mVault, "operation", nil) {
		is.VaultRequestsPerCert["ca-operator "+k] = v / n
	}
	is.APIWritesPerCert = map[string]float64{}
	for _, s := range after.cert {
		_ = s
	}
	for k, v := range deltaBy(before.cert, after.cert, mCertWrites, "resource", nil) {
		is.APIWritesPerCert["cert-operator "+k] = v / n
	}
	for k, v := range deltaBy(before.ca, after.ca, mCAWrites, "kind", nil) {
		is.APIWritesPerCert["ca-operator "+k] = v / n
	}
	is.APIRequestsPerCert = (after.apiserver - before.apiserver - float64(after.own-before.own)) / n
	is.Issued = sumMap(deltaBy(before.cert, after.cert, mCertIssued, "kind", nil))
	if r.cfg.SkipBaselines {
		return nil
	}
	cas, err := r.issuingCAs(ctx, r.cfg.CAs)
	if err != nil {
		return err
	}
	vc, err := r.env.VaultClient()
	if err != nil {
		return err
	}
	tok, err := r.vault.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{"clusterpki-cert-operator"}, TTL: "48h", DisplayName: "bench-baseline"})
	if err != nil {
		return err
	}
	vc.SetToken(tok.Auth.ClientToken)
	keepConnections(vc)
	for _, n := range r.cfg.BaselineConcurrency {
		bl, err := r.issuanceBaseline(ctx, vc, cas, n)
		if err != nil {
			return err
		}
		r.cfg.logf("issuance baseline at concurrency %d: %.1f certificates/s", n, bl.ThroughputPerS)
		is.Baselines = append(is.Baselines, baselineRun{Concurrency: n, Stats: bl})
		if is.Baseline == nil || bl.ThroughputPerS > is.Baseline.ThroughputPerS {
			is.Baseline, is.BaselineConcurrency = &bl, n
		}
	}
	bl := *is.Baseline
	if bl.ThroughputPerS > 0 {
		is.Ratio = is.Operator.ThroughputPerS / bl.ThroughputPerS
	}
	if bl.DurationS > 0 {
		is.P99OverBaselineAll = is.Operator.P99S / bl.DurationS
	}
	return nil
}

// issuanceBaseline runs the issuance baseline at concurrency n on a namespace of its own
// (which no operator watches) and returns its figures.
func (r *run) issuanceBaseline(ctx context.Context, vc *vaultapi.Client, cas map[string]issuingCA, n int) (latencyStats, error) {
	ns := fmt.Sprintf("%s-%d", baselineNS, n)
	if _, err := r.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return latencyStats{}, err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bt, err := newTracker(bctx, r.kube, r.client, ns, r.cfg.Certs)
	if err != nil {
		return latencyStats{}, err
	}
	defer bt.stop()
	b := &baselineIssuer{kube: r.kube, client: r.client, vault: vc, cas: cas, ns: ns, workers: n}
	if err := b.run(bctx); err != nil {
		return latencyStats{}, err
	}
	if err := createCertificates(ctx, r.client, bt, ns, 0, r.cfg.Certs, r.cfg.CAs, r.cfg.Creators, r.cfg.TTL); err != nil {
		return latencyStats{}, err
	}
	if err := bt.wait(ctx, r.cfg.PhaseTimeout); err != nil {
		select {
		case e := <-b.errs:
			return latencyStats{}, fmt.Errorf("baseline at %d: %w (first error: %v)", n, err, e)
		default:
			return latencyStats{}, fmt.Errorf("baseline at %d: %w", n, err)
		}
	}
	return summarize(bt.results()), nil
}

// keepConnections lets the baselines' Vault client keep as many idle connections as they
// have workers, as the operators' client does (pkg/vault), instead of GOMAXPROCS+1.
func keepConnections(c *vaultapi.Client) {
	if t, ok := c.CloneConfig().HttpClient.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = 128
	}
}

func sumMap(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// rss returns both operators' resident memory in MiB.
func (r *run) rss() (cert, ca float64, err error) {
	c, err := rssBytes(r.certOp.pid())
	if err != nil {
		return 0, 0, err
	}
	a, err := rssBytes(r.caOp.pid())
	if err != nil {
		return 0, 0, err
	}
	return float64(c) / (1 << 20), float64(a) / (1 << 20), nil
}

func (r *run) memory(ctx context.Context) error {
	m := &r.res.Memory
	if more := r.cfg.MemoryCerts - r.cfg.Certs; more > 0 {
		t, err := newTracker(ctx, r.kube, r.client, opNS, more)
		if err != nil {
			return err
		}
		if err := createCertificates(ctx, r.client, t, opNS, r.cfg.Certs, r.cfg.MemoryCerts, r.cfg.CAs, r.cfg.Creators, r.cfg.TTL); err != nil {
			t.stop()
			return err
		}
		err = t.wait(ctx, r.cfg.PhaseTimeout)
		st := summarize(t.results())
		m.ScaleUp = &st
		t.stop()
		if err != nil {
			return err
		}
	}
	time.Sleep(r.cfg.SettleTime)
	var err error
	if m.CertOperatorMiB, m.CAOperatorMiB, err = r.rss(); err != nil {
		return err
	}
	if hwm, err := procStatusBytes(r.certOp.pid(), "VmHWM:"); err == nil {
		m.CertOperatorPeakMiB = float64(hwm) / (1 << 20)
	}
	// The split of the resident set is read now; the Go heap figures come from a scrape after
	// the unrelated Secrets' reading, since a scrape itself touches pages and allocates.
	breakdown, err := residentSplit(r.certOp.pid())
	if err != nil {
		return err
	}
	data := make([]byte, r.cfg.UnrelatedSecretBytes)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	if err := parallel(ctx, r.cfg.Creators, 0, r.cfg.UnrelatedSecrets, func(ctx context.Context, i int) error {
		_, err := r.kube.CoreV1().Secrets(opNS).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: fmt.Sprintf("unrelated-%05d", i)},
			Data:       map[string][]byte{"data": data},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("unrelated Secrets: %w", err)
	}
	time.Sleep(r.cfg.SettleTime)
	if m.CertOperatorWithSecretsMiB, m.CAOperatorWithSecretsMiB, err = r.rss(); err != nil {
		return err
	}
	if m.CertOperatorMiB > 0 {
		m.CertOperatorChangePct = 100 * (m.CertOperatorWithSecretsMiB - m.CertOperatorMiB) / m.CertOperatorMiB
	}
	if snap, err := r.certOp.metrics(ctx); err == nil {
		breakdown.addHeap(snap)
		m.CertOperatorBreakdown = breakdown
	}
	return r.saveProfile(ctx, "heap", fmt.Sprintf("heap-%d.pprof", r.cfg.MemoryCerts))
}

// scaleUp creates Certificates up to ScaleCerts at once, waits for them, and records the
// scale point.
func (r *run) scaleUp(ctx context.Context) error {
	from, to := r.cfg.MemoryCerts, r.cfg.ScaleCerts
	t, err := newTracker(ctx, r.kube, r.client, opNS, to-from)
	if err != nil {
		return err
	}
	defer t.stop()
	if err := createCertificates(ctx, r.client, t, opNS, from, to, r.cfg.CAs, r.cfg.Creators, r.cfg.TTL); err != nil {
		return err
	}
	if err := t.wait(ctx, r.cfg.PhaseTimeout); err != nil {
		return err
	}
	st := summarize(t.results())
	if err := r.saveProfile(ctx, "heap", fmt.Sprintf("heap-%d.pprof", to)); err != nil {
		return err
	}
	return r.scalePoint(ctx, to, &st)
}

// scalePoint records the cert-operator's memory with n Ready Certificates (after SettleTime),
// then restarts it and records how long it takes to re-observe them all.
func (r *run) scalePoint(ctx context.Context, n int, created *latencyStats) error {
	time.Sleep(r.cfg.SettleTime)
	sp := ScalePoint{Certificates: n, Created: created}
	var err error
	if sp.CertOperatorMiB, sp.CAOperatorMiB, err = r.rss(); err != nil {
		return err
	}
	if hwm, err := procStatusBytes(r.certOp.pid(), "VmHWM:"); err == nil {
		sp.CertOperatorPeakMiB = float64(hwm) / (1 << 20)
	}
	if sp.Restart, err = r.restartAt(ctx, n); err != nil {
		return err
	}
	r.res.ScalePoints = append(r.res.ScalePoints, sp)
	return nil
}

func (r *run) churn(ctx context.Context) error {
	before, err := r.counters(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	stamp := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, touchKey, start.Format(time.RFC3339Nano)))
	if err := parallel(ctx, r.cfg.Creators, 0, r.cfg.MemoryCerts, func(ctx context.Context, i int) error {
		if _, err := r.client.ClusterpkiV1alpha1().Certificates(opNS).Patch(ctx, certName(i), types.MergePatchType, stamp, metav1.PatchOptions{}); err != nil {
			return err
		}
		_, err := r.kube.CoreV1().Secrets(opNS).Patch(ctx, certName(i)+"-tls", types.MergePatchType, stamp, metav1.PatchOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("touch Certificates and Secrets: %w", err)
	}
	if err := parallel(ctx, r.cfg.Creators, 0, r.cfg.ProvisionCAs, func(ctx context.Context, i int) error {
		_, err := r.client.ClusterpkiV1alpha1().CertificateAuthorities(opNS).Patch(ctx, caName(i), types.MergePatchType, stamp, metav1.PatchOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("touch CertificateAuthorities: %w", err)
	}
	c := &r.res.Churn
	c.TouchSeconds = time.Since(start).Seconds()
	window := r.cfg.ChurnWindow
	if min := time.Since(start) + 5*time.Second; window < min {
		window = min
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(start.Add(window))):
	}
	after, err := r.counters(ctx)
	if err != nil {
		return err
	}
	c.WindowSeconds = time.Since(start).Seconds()
	c.Method = "restart-free: every Certificate, its Secret and every CertificateAuthority got a metadata-only annotation patch " +
		"(an update event for each object, as a resync gives), then operator metrics were compared over the window"
	c.CertOperatorVaultRequests = sumMap(deltaBy(before.cert, after.cert, mCertVault, "operation", nil))
	c.CertOperatorAPIWrites = sumMap(deltaBy(before.cert, after.cert, mCertWrites, "resource", nil))
	c.CertOperatorIssued = sumMap(deltaBy(before.cert, after.cert, mCertIssued, "kind", nil))
	c.CAOperatorAPIWrites = sumMap(deltaBy(before.ca, after.ca, mCAWrites, "kind", nil))
	c.CAOperatorVaultByOperation = deltaBy(before.ca, after.ca, mVault, "operation", nil)
	for op, v := range c.CAOperatorVaultByOperation {
		if !strings.HasPrefix(op, "read") && !strings.HasPrefix(op, "list") && !strings.HasPrefix(op, "login") && !strings.HasPrefix(op, "renew") && !strings.HasPrefix(op, "lookup") {
			c.CAOperatorVaultWrites += v
		}
	}
	c.CertSyncs = sumMap(deltaBy(before.cert, after.cert, mSyncCount, "controller", map[string]string{"controller": certController}))
	c.CASyncs = sumMap(deltaBy(before.ca, after.ca, mSyncCount, "controller", map[string]string{"controller": caController}))
	c.VaultSignCalls = c.CertOperatorVaultRequests
	c.OperatorAPIWrites = c.CertOperatorAPIWrites + c.CAOperatorAPIWrites
	return nil
}

func (r *run) restart(ctx context.Context) error {
	rs, err := r.restartAt(ctx, r.cfg.MemoryCerts)
	if err != nil {
		return err
	}
	r.res.Restart = rs
	for i := range r.res.ScalePoints {
		if r.res.ScalePoints[i].Certificates == r.cfg.MemoryCerts {
			return nil
		}
	}
	// The memory phase measured this scale point's RSS; the restart completes it.
	r.res.ScalePoints = append(r.res.ScalePoints, ScalePoint{Certificates: r.cfg.MemoryCerts, Created: r.res.Memory.ScaleUp,
		CertOperatorMiB: r.res.Memory.CertOperatorMiB, CAOperatorMiB: r.res.Memory.CAOperatorMiB,
		CertOperatorPeakMiB: r.res.Memory.CertOperatorPeakMiB, Restart: rs})
	return nil
}

// restartAt kills the cert-operator holding n Ready Certificates, starts it again and measures
// how long it takes to re-observe them all, and what it re-issued or wrote meanwhile.
func (r *run) restartAt(ctx context.Context, n int) (RestartFigures, error) {
	var rs RestartFigures
	r.certOp.Kill()
	start := time.Now()
	if err := r.certOp.start(ctx); err != nil {
		return rs, err
	}
	rs.ReadySeconds = time.Since(start).Seconds()
	deadline := start.Add(r.cfg.PhaseTimeout)
	for {
		s, err := r.certOp.metrics(ctx)
		if err != nil {
			return rs, err
		}
		syncs := s.sum(mSyncCount, map[string]string{"controller": certController})
		depth := s.sum(mQueueDepth, map[string]string{"controller": certController})
		if syncs >= float64(n) && depth == 0 {
			rs.ReobservedSeconds = time.Since(start).Seconds()
			rs.Syncs = syncs
			break
		}
		if time.Now().After(deadline) {
			return rs, fmt.Errorf("cert-operator re-observed %v of %d Certificates after %v", syncs, n, r.cfg.PhaseTimeout)
		}
		// Each scrape carries three series per Certificate: above 10,000 a scrape costs the
		// operator enough CPU to slow what is measured, so look less often.
		poll := 100 * time.Millisecond
		if n > 10000 {
			poll = time.Second
		}
		time.Sleep(poll)
	}
	time.Sleep(5 * time.Second) // anything re-issued late still counts
	s, err := r.certOp.metrics(ctx)
	if err != nil {
		return rs, err
	}
	rs.Reissued = s.sum(mCertIssued, nil)
	rs.VaultRequests = s.sum(mCertVault, nil)
	rs.APIWrites = s.sum(mCertWrites, nil)
	if mib, err := rssBytes(r.certOp.pid()); err == nil {
		rs.CertOperatorMiBAfter = float64(mib) / (1 << 20)
	}
	if hwm, err := procStatusBytes(r.certOp.pid(), "VmHWM:"); err == nil {
		rs.CertOperatorPeakMiB = float64(hwm) / (1 << 20)
	}
	return rs, nil
}

// startCPUProfile takes the cert-operator's CPU profile of the next ProfileSeconds into file
// (when profiling); the channel answers once it is stored.
func (r *run) startCPUProfile(ctx context.Context, file string) <-chan error {
	done := make(chan error, 1)
	if r.cfg.ProfileDir == "" {
		done <- nil
		return done
	}
	go func() {
		done <- r.fetchProfile(ctx, fmt.Sprintf("profile?seconds=%d", r.cfg.ProfileSeconds), file)
	}()
	return done
}

// saveProfile stores the cert-operator's profile called name (heap, allocs, mutex, block) into
// file, when profiling.
func (r *run) saveProfile(ctx context.Context, name, file string) error {
	if r.cfg.ProfileDir == "" {
		return nil
	}
	return r.fetchProfile(ctx, name, file)
}

func (r *run) fetchProfile(ctx context.Context, path, file string) error {
	if err := os.MkdirAll(r.cfg.ProfileDir, 0o755); err != nil {
		return err
	}
	c := &http.Client{Timeout: time.Duration(r.cfg.ProfileSeconds+60) * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.certOp.MetricsAddr+"/debug/pprof/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", path, resp.Status)
	}
	f, err := os.Create(filepath.Join(r.cfg.ProfileDir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	r.cfg.logf("stored profile %s", filepath.Join(r.cfg.ProfileDir, file))
	return f.Close()
}
