package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Results are the figures of one run (results.json).
type Results struct {
	Started      time.Time         `json:"started"`
	Finished     time.Time         `json:"finished"`
	Error        string            `json:"error,omitempty"`
	Machine      Machine           `json:"machine"`
	Versions     map[string]string `json:"versions"`
	Parameters   Config            `json:"parameters"`
	OperatorArgs map[string]string `json:"operatorArgs"`
	// Shipped is what each operator took from its shipped Deployment.
	Shipped map[string]shippedRecord `json:"shipped"`
	LogDir  string                   `json:"logDir,omitempty"`

	CAProvisioning struct {
		Operator           latencyStats       `json:"operator"`
		Baseline           *latencyStats      `json:"baseline,omitempty"`
		Ratio              float64            `json:"ratio"`
		VaultRequestsPerCA map[string]float64 `json:"vaultRequestsPerCA"`
		APIWritesPerCA     float64            `json:"apiWritesPerCA"`
		VaultSecondsPerCA  map[string]float64 `json:"vaultSecondsPerCA"`
		SyncsPerCA         float64            `json:"syncsPerCA"`
		SyncSecondsPerCA   float64            `json:"syncSecondsPerCA"`
		// WarmupCAs were made the baseline's way, unmeasured, before both runs.
		WarmupCAs int `json:"warmupCAs,omitempty"`
	} `json:"caProvisioning"`
	Issuance struct {
		Operator             latencyStats       `json:"operator"`
		Baseline             *latencyStats      `json:"baseline,omitempty"`
		BaselineConcurrency  int                `json:"baselineConcurrency,omitempty"`
		Baselines            []baselineRun      `json:"baselines,omitempty"`
		Ratio                float64            `json:"ratio"`
		P99OverBaselineAll   float64            `json:"p99OverBaselineAll"`
		VaultRequestsPerCert map[string]float64 `json:"vaultRequestsPerCert"`
		APIWritesPerCert     map[string]float64 `json:"apiWritesPerCert"`
		APIRequestsPerCert   float64            `json:"apiRequestsPerCert"`
		Issued               float64            `json:"issued"`
	} `json:"issuance"`
	Memory struct {
		ScaleUp                    *latencyStats `json:"scaleUp,omitempty"`
		CertOperatorMiB            float64       `json:"certOperatorMiB"`
		CertOperatorPeakMiB        float64       `json:"certOperatorPeakMiB"`
		CAOperatorMiB              float64       `json:"caOperatorMiB"`
		CertOperatorWithSecretsMiB float64       `json:"certOperatorWithSecretsMiB"`
		CAOperatorWithSecretsMiB   float64       `json:"caOperatorWithSecretsMiB"`
		CertOperatorChangePct      float64       `json:"certOperatorChangePercent"`
		// CertOperatorBreakdown splits the cert-operator's resident set at 10,000 (or
		// MemoryCerts) Ready Certificates.
		CertOperatorBreakdown *memoryBreakdown `json:"certOperatorBreakdown,omitempty"`
	} `json:"memory"`
	Churn struct {
		Method                     string             `json:"method"`
		TouchSeconds               float64            `json:"touchSeconds"`
		WindowSeconds              float64            `json:"windowSeconds"`
		VaultSignCalls             float64            `json:"vaultSignCalls"`
		OperatorAPIWrites          float64            `json:"operatorAPIWrites"`
		CertOperatorVaultRequests  float64            `json:"certOperatorVaultRequests"`
		CertOperatorAPIWrites      float64            `json:"certOperatorAPIWrites"`
		CertOperatorIssued         float64            `json:"certOperatorIssued"`
		CAOperatorAPIWrites        float64            `json:"caOperatorAPIWrites"`
		CAOperatorVaultWrites      float64            `json:"caOperatorVaultWrites"`
		CAOperatorVaultByOperation map[string]float64 `json:"caOperatorVaultByOperation"`
		CertSyncs                  float64            `json:"certSyncs"`
		CASyncs                    float64            `json:"caSyncs"`
	} `json:"churn"`
	Restart     RestartFigures `json:"restart"`
	ScalePoints []ScalePoint   `json:"scalePoints"`
	Targets     []Target       `json:"targets"`
}

// RestartFigures are what a restart of the cert-operator showed.
type RestartFigures struct {
	ReadySeconds         float64 `json:"readySeconds"`
	ReobservedSeconds    float64 `json:"reobservedSeconds"`
	Syncs                float64 `json:"syncs"`
	Reissued             float64 `json:"reissued"`
	VaultRequests        float64 `json:"vaultRequests"`
	APIWrites            float64 `json:"apiWrites"`
	CertOperatorMiBAfter float64 `json:"certOperatorMiBAfter"`
	CertOperatorPeakMiB  float64 `json:"certOperatorPeakMiBAfter"`
}

// ScalePoint is the cert-operator with a number of Ready Certificates: its memory, and how
// long a restart takes to re-observe them.
type ScalePoint struct {
	Certificates        int            `json:"certificates"`
	Created             *latencyStats  `json:"created,omitempty"`
	CertOperatorMiB     float64        `json:"certOperatorMiB"`
	CertOperatorPeakMiB float64        `json:"certOperatorPeakMiB"`
	CAOperatorMiB       float64        `json:"caOperatorMiB"`
	Restart             RestartFigures `json:"restart"`
}

// baselineRun is the issuance baseline at one concurrency.
type baselineRun struct {
	Concurrency int          `json:"concurrency"`
	Stats       latencyStats `json:"stats"`
}

// shippedRecord is what an operator took from its shipped Deployment.
type shippedRecord struct {
	Manifest       string   `json:"manifest"`
	Args           []string `json:"args"`
	Env            []string `json:"env"`
	MemoryLimitMiB float64  `json:"memoryLimitMiB"`
}

// Target is one goal of issue 7 and whether the run met it.
type Target struct {
	Name  string `json:"name"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Met   bool   `json:"met"`
	Known bool   `json:"measured"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU      string  `json:"cpu"`
	Cores    int     `json:"cores"`
	MemGiB   float64 `json:"memoryGiB"`
	OS       string  `json:"os"`
	Kernel   string  `json:"kernel"`
	Hostname string  `json:"hostname"`
}

func newResults(cfg Config) *Results {
	cfg.Logf = nil
	r := &Results{Started: time.Now(), Parameters: cfg, OperatorArgs: map[string]string{}, Shipped: map[string]shippedRecord{}, Machine: machine()}
	return r
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			}
		}
		m.MemGiB = kb / (1 << 20)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.Hostname, _ = os.Hostname()
	return m
}

// versions lists the pinned control-plane versions, Go, and each operator's --version.
func versions(ctx context.Context, root, binDir string) map[string]string {
	v := map[string]string{"go (harness)": runtime.Version()}
	if data, err := os.ReadFile(filepath.Join(root, "scripts", "versions.env")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, val, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
				switch k {
				case "ETCD_VERSION", "KUBE_VERSION", "VAULT_VERSION":
					v[strings.ToLower(strings.TrimSuffix(k, "_VERSION"))] = val
				}
			}
		}
	}
	for _, name := range []string{"ca-operator", "cert-operator"} {
		out, _ := exec.CommandContext(ctx, filepath.Join(binDir, name), "--version").CombinedOutput()
		v[name] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		v["clusterpki (git)"] = strings.TrimSpace(string(out))
	}
	return v
}

// finish records the end and evaluates the targets.
func (r *Results) finish(err error) {
	r.Finished = time.Now()
	if err != nil {
		r.Error = err.Error()
	}
	is, ca, m, c, rs := &r.Issuance, &r.CAProvisioning, &r.Memory, &r.Churn, &r.Restart
	add := func(name, want, got string, met, known bool) {
		r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Met: met && known, Known: known})
	}
	add("Issuance throughput vs baseline", "≥ 0.80", fmt.Sprintf("%.2f", is.Ratio), is.Ratio >= 0.8, is.Baseline != nil)
	bl := 0.0
	if is.Baseline != nil {
		bl = is.Baseline.DurationS
	}
	add("p99 create→Ready vs baseline time for all", "≤ 1.25×", fmt.Sprintf("%.2f× (p99 %.2fs, baseline all %.2fs)", is.P99OverBaselineAll, is.Operator.P99S, bl),
		is.P99OverBaselineAll <= 1.25, is.Baseline != nil && is.Operator.Count > 0)
	add("CA provisioning vs baseline", "≥ 0.80", fmt.Sprintf("%.2f", ca.Ratio), ca.Ratio >= 0.8, ca.Baseline != nil)
	add(fmt.Sprintf("cert-operator RSS with %d Certificates", r.Parameters.MemoryCerts), "< 100 MiB", fmt.Sprintf("%.1f MiB", m.CertOperatorMiB),
		m.CertOperatorMiB < 100, m.CertOperatorMiB > 0)
	add(fmt.Sprintf("cert-operator RSS change with %d unrelated Secrets", r.Parameters.UnrelatedSecrets), "< 10 %", fmt.Sprintf("%+.1f %%", m.CertOperatorChangePct),
		m.CertOperatorChangePct < 10, m.CertOperatorWithSecretsMiB > 0)
	add("Zero churn: Vault sign calls", "0", fmt.Sprint(c.VaultSignCalls), c.VaultSignCalls == 0, c.WindowSeconds > 0)
	add("Zero churn: operator API writes", "0", fmt.Sprint(c.OperatorAPIWrites), c.OperatorAPIWrites == 0, c.WindowSeconds > 0)
	reissued, restarts := 0.0, 0
	for _, sp := range r.ScalePoints {
		if sp.Restart.ReobservedSeconds > 0 {
			reissued += sp.Restart.Reissued
			restarts++
		}
	}
	add("Restart: re-issued", "0", fmt.Sprintf("%v (over %d restarts)", reissued, restarts), reissued == 0 && rs.Reissued == 0, restarts > 0)
	limit := r.Shipped["cert-operator"].MemoryLimitMiB
	add(fmt.Sprintf("Shipped memory limit vs 2× RSS with %d Certificates", r.Parameters.MemoryCerts), "≥ 2×",
		fmt.Sprintf("%.0f MiB vs %.1f MiB (%.1f×)", limit, m.CertOperatorMiB, limit/max(m.CertOperatorMiB, 1)),
		limit >= 2*m.CertOperatorMiB, limit > 0 && m.CertOperatorMiB > 0)
	if n := len(r.ScalePoints); n > 0 && r.Parameters.ScaleCerts > 0 {
		last := r.ScalePoints[n-1]
		peak := max(last.CertOperatorPeakMiB, last.Restart.CertOperatorPeakMiB)
		add(fmt.Sprintf("cert-operator peak RSS with %d Certificates vs shipped limit", last.Certificates), fmt.Sprintf("< %.0f MiB", limit),
			fmt.Sprintf("%.1f MiB (steady %.1f MiB)", peak, last.CertOperatorMiB), peak < limit,
			last.Certificates == r.Parameters.ScaleCerts && peak > 0 && limit > 0)
	}
}

// write stores results.json, results.md and results.png in dir.
func (r *Results) write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	return writeChart(filepath.Join(dir, "results.png"), r)
}

func (r *Results) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# clusterpki benchmark")
	p("")
	p("Run %s – %s (%s)%s.", r.Started.UTC().Format(time.RFC3339), r.Finished.UTC().Format("15:04:05Z"),
		r.Finished.Sub(r.Started).Round(time.Second), map[bool]string{true: ", **quick mode**", false: ""}[r.Parameters.Quick])
	if r.Error != "" {
		p("")
		p("**The run failed:** %s", r.Error)
	}
	p("")
	p("Machine: %s, %d cores, %.1f GiB RAM, %s, kernel %s.", r.Machine.CPU, r.Machine.Cores, r.Machine.MemGiB, r.Machine.OS, r.Machine.Kernel)
	p("")
	p("Versions: %s.", joinMap(r.Versions))
	p("")
	c := r.Parameters
	p("Parameters: %d CAs, %d Certificates at once (ECDSA P-256, ttl %s), %d CAs provisioned, %d Certificates for memory/churn/restart, scale point %d, %d unrelated Secrets of %d B, churn window %s, issuance baseline at concurrency %v, CA baseline at %d, %d creating goroutines.",
		c.CAs, c.Certs, c.TTL, c.ProvisionCAs, c.MemoryCerts, c.ScaleCerts, c.UnrelatedSecrets, c.UnrelatedSecretBytes, c.ChurnWindow, c.BaselineConcurrency, c.CAWorkers, c.Creators)
	p("")
	p("Both operators run with their shipped Deployment's arguments and environment; the bench replaces only addresses, auth (a Vault token instead of a ServiceAccount login) and leader election (one replica), and limits them to the bench namespace:")
	p("")
	for _, name := range []string{"ca-operator", "cert-operator"} {
		if sh, ok := r.Shipped[name]; ok {
			p("- %s (`%s`): args `%s`; env `%s`; memory limit %.0f MiB.", name, sh.Manifest, strings.Join(sh.Args, " "), strings.Join(sh.Env, " "), sh.MemoryLimitMiB)
		}
	}
	p("")
	p("## Targets")
	p("")
	p("| target | want | got | met |")
	p("|---|---|---|---|")
	for _, t := range r.Targets {
		met := map[bool]string{true: "yes", false: "**no**"}[t.Met]
		if !t.Known {
			met = "not measured"
		}
		p("| %s | %s | %s | %s |", t.Name, t.Want, t.Got, met)
	}
	p("")
	p("## Issuance (%d created at once)", c.Certs)
	p("")
	p("| | certificates/s | p50 | p95 | p99 | max | all Ready after |")
	p("|---|---|---|---|---|---|---|")
	row := func(name string, s *latencyStats) {
		if s == nil {
			return
		}
		p("| %s | %.1f | %.2fs | %.2fs | %.2fs | %.2fs | %.2fs |", name, s.ThroughputPerS, s.P50S, s.P95S, s.P99S, s.MaxS, s.DurationS)
	}
	row("cert-operator", &r.Issuance.Operator)
	for i := range r.Issuance.Baselines {
		b := &r.Issuance.Baselines[i]
		best := ""
		if b.Concurrency == r.Issuance.BaselineConcurrency {
			best = " — best"
		}
		row(fmt.Sprintf("baseline at %d concurrent (key, sign, Secret, status)%s", b.Concurrency, best), &b.Stats)
	}
	p("")
	p("Ratio operator/best baseline (concurrency %d): **%.2f**. Certificates issued by the operator (its issuances counter): %.0f.", r.Issuance.BaselineConcurrency, r.Issuance.Ratio, r.Issuance.Issued)
	p("")
	p("Per certificate — Vault requests: %s; operator API writes: %s; all API requests the API server saw apart from the harness's own (non-watch, both operators and events included): %.2f.",
		joinFloatMap(r.Issuance.VaultRequestsPerCert), joinFloatMap(r.Issuance.APIWritesPerCert), r.Issuance.APIRequestsPerCert)
	p("")
	p("## CA provisioning (%d at once)", c.ProvisionCAs)
	p("")
	p("| | CAs/s | p50 | p99 | all Ready after |")
	p("|---|---|---|---|---|")
	carow := func(name string, s *latencyStats) {
		if s == nil {
			return
		}
		p("| %s | %.2f | %.2fs | %.2fs | %.2fs |", name, s.ThroughputPerS, s.P50S, s.P99S, s.DurationS)
	}
	carow("ca-operator", &r.CAProvisioning.Operator)
	carow("baseline (same Vault writes, ConfigMap, status)", r.CAProvisioning.Baseline)
	p("")
	if w := r.CAProvisioning.WarmupCAs; w > 0 {
		p("Before both runs, %d CAs were made the baseline's way and not measured: a fresh Vault makes its first PKI mounts slower, and only the first run would pay for it.", w)
		p("")
	}
	p("Ratio: **%.2f**. ca-operator Vault requests per CA by operation: %s; API writes per CA: %.2f.", r.CAProvisioning.Ratio,
		joinFloatMap(r.CAProvisioning.VaultRequestsPerCA), r.CAProvisioning.APIWritesPerCA)
	p("")
	p("ca-operator syncs per CA %.2f, sync time per CA %.3fs; Vault time per CA by operation (s): %s.", r.CAProvisioning.SyncsPerCA, r.CAProvisioning.SyncSecondsPerCA,
		joinFloatMap(r.CAProvisioning.VaultSecondsPerCA))
	p("")
	p("## Memory (VmRSS)")
	p("")
	m := r.Memory
	if m.ScaleUp != nil {
		p("Scale-up to %d: %d more created at once, %.1f certificates/s, p99 %.2fs.", c.MemoryCerts, m.ScaleUp.Count, m.ScaleUp.ThroughputPerS, m.ScaleUp.P99S)
		p("")
	}
	p("| | %d Ready Certificates | + %d unrelated Secrets | change |", c.MemoryCerts, c.UnrelatedSecrets)
	p("|---|---|---|---|")
	p("| cert-operator | %.1f MiB (peak so far %.1f MiB) | %.1f MiB | %+.1f %% |", m.CertOperatorMiB, m.CertOperatorPeakMiB, m.CertOperatorWithSecretsMiB, m.CertOperatorChangePct)
	p("| ca-operator | %.1f MiB | %.1f MiB | |", m.CAOperatorMiB, m.CAOperatorWithSecretsMiB)
	p("")
	if b := m.CertOperatorBreakdown; b != nil {
		p("The cert-operator's resident set with %d Ready Certificates: %.1f MiB anonymous (read a moment later, after the unrelated Secrets: Go heap in use %.1f MiB, next collection at %.1f MiB; goroutine stacks %.1f MiB; freed heap not yet returned %.1f MiB; runtime structures %.1f MiB) and %.1f MiB of its executable's pages mapped from the file.",
			c.MemoryCerts, b.AnonMiB, b.HeapInuseMiB, b.HeapGoalMiB, b.StackMiB, b.FreeMiB, b.RuntimeMiB, b.FileMiB)
		p("")
	}
	p("## Zero churn")
	p("")
	ch := r.Churn
	p("Method: %s. Touching took %.1fs; window %.1fs.", ch.Method, ch.TouchSeconds, ch.WindowSeconds)
	p("")
	p("| | Vault sign calls | API writes | re-issued | syncs in window |")
	p("|---|---|---|---|---|")
	p("| cert-operator | %.0f | %.0f | %.0f | %.0f |", ch.CertOperatorVaultRequests, ch.CertOperatorAPIWrites, ch.CertOperatorIssued, ch.CertSyncs)
	p("| ca-operator | %.0f (Vault writes) | %.0f | | %.0f |", ch.CAOperatorVaultWrites, ch.CAOperatorAPIWrites, ch.CASyncs)
	p("")
	p("ca-operator Vault requests in the window by operation (reads are its level-triggered checks): %s.", joinFloatMap(ch.CAOperatorVaultByOperation))
	p("")
	p("## Restart (cert-operator killed with %d Ready Certificates)", c.MemoryCerts)
	p("")
	rs := r.Restart
	p("Ready (/readyz) after %.2fs; all %d re-observed (syncs ≥ N, queue empty) after **%.2fs**; re-issued **%.0f**, Vault requests %.0f, API writes %.0f; RSS afterwards %.1f MiB.",
		rs.ReadySeconds, c.MemoryCerts, rs.ReobservedSeconds, rs.Reissued, rs.VaultRequests, rs.APIWrites, rs.CertOperatorMiBAfter)
	p("")
	p("## Scale points")
	p("")
	p("RSS after settling with N Ready Certificates (peak: VmHWM since the process started), then the cert-operator killed and started again. Shipped memory limit: %.0f MiB.", r.Shipped["cert-operator"].MemoryLimitMiB)
	p("")
	p("| Ready Certificates | created at | cert-operator RSS | peak | per certificate | restart: /readyz | all re-observed | re-issued | RSS after restart (peak) |")
	p("|---|---|---|---|---|---|---|---|---|")
	for _, sp := range r.ScalePoints {
		created := "—"
		if sp.Created != nil {
			created = fmt.Sprintf("%.1f/s", sp.Created.ThroughputPerS)
		}
		p("| %d | %s | %.1f MiB | %.1f MiB | %.1f KiB | %.2fs | %.2fs | %.0f | %.1f MiB (%.1f MiB) |", sp.Certificates, created, sp.CertOperatorMiB, sp.CertOperatorPeakMiB,
			sp.CertOperatorMiB*1024/float64(sp.Certificates), sp.Restart.ReadySeconds, sp.Restart.ReobservedSeconds, sp.Restart.Reissued,
			sp.Restart.CertOperatorMiBAfter, sp.Restart.CertOperatorPeakMiB)
	}
	if n := len(r.ScalePoints); n >= 2 {
		a, b := r.ScalePoints[0], r.ScalePoints[n-1]
		p("")
		p("Growth between %d and %d: %.2f KiB of RSS per certificate; re-observation %.2f ms per certificate.", a.Certificates, b.Certificates,
			(b.CertOperatorMiB-a.CertOperatorMiB)*1024/float64(b.Certificates-a.Certificates),
			(b.Restart.ReobservedSeconds-a.Restart.ReobservedSeconds)*1000/float64(b.Certificates-a.Certificates))
	}
	p("")
	p("Operator command lines: %s.", joinMap(r.OperatorArgs))
	p("")
	p("![latency distribution and certificates Ready over time](results.png)")
	return b.String()
}

// joinMap lists m's entries sorted by key, each as "key `value`".
func joinMap(m map[string]string) string { return joinSorted(m, "%s `%s`") }

// joinFloatMap lists m's entries sorted by key, each as "key value" (two decimals); "none"
// when m is empty.
func joinFloatMap(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	return joinSorted(m, "%s %.2f")
}

// joinSorted formats each entry of m (key, then value) with format, sorted by key, joined by commas.
func joinSorted[V any](m map[string]V, format string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf(format, k, m[k]))
	}
	return strings.Join(parts, ", ")
}
