// Command bench is clusterpki's benchmark (`make bench`, issue 7): it starts a local etcd,
// kube-apiserver and Vault, runs the ca-operator and cert-operator as processes, and measures
// issuance and CA provisioning against baselines doing only the unavoidable work, memory, zero
// churn and restart. Results go to --results (JSON, Markdown, PNG).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterpki/clusterpki/bench/harness"
)

func main() {
	quick := false
	for _, a := range os.Args[1:] {
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			quick = true
		}
	}
	cfg := harness.Defaults()
	if quick {
		cfg = harness.Quick()
	}
	flag.Bool("quick", quick, "small parameters (2 CAs, 50 Certificates, seconds-long phases); other flags still override")
	flag.StringVar(&cfg.BinDir, "bin-dir", "bin", "folder holding the ca-operator and cert-operator binaries (make build)")
	flag.StringVar(&cfg.ResultsDir, "results", "bench/results", "folder for results.json, results.md and results.png")
	flag.StringVar(&cfg.WorkDir, "work-dir", "", "folder for the control plane's data and the operators' logs (default: temporary, removed)")
	flag.BoolVar(&cfg.KeepWorkDir, "keep", false, "keep the temporary work folder (logs)")
	flag.StringVar(&cfg.RepoRoot, "repo", "", "clusterpki checkout (default: the folder above holding go.work)")
	flag.IntVar(&cfg.CAs, "cas", cfg.CAs, "CertificateAuthorities the issuance Certificates are spread over")
	flag.IntVar(&cfg.Certs, "certs", cfg.Certs, "Certificates created at once for the issuance figure")
	flag.IntVar(&cfg.ProvisionCAs, "provision-cas", cfg.ProvisionCAs, "CertificateAuthorities provisioned at once")
	flag.IntVar(&cfg.MemoryCerts, "memory-certs", cfg.MemoryCerts, "Ready Certificates for the memory, churn and restart figures")
	flag.IntVar(&cfg.UnrelatedSecrets, "unrelated-secrets", cfg.UnrelatedSecrets, "unrelated Secrets added for the memory figure")
	flag.IntVar(&cfg.UnrelatedSecretBytes, "unrelated-secret-bytes", cfg.UnrelatedSecretBytes, "data size of each unrelated Secret")
	flag.DurationVar(&cfg.ChurnWindow, "churn-window", cfg.ChurnWindow, "how long operator metrics are watched after the forced resync")
	flag.Func("baseline-concurrency", "comma-separated concurrencies the issuance baseline runs at (default 8,16,32,64); the ratio uses the best", func(v string) error {
		cfg.BaselineConcurrency = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			cfg.BaselineConcurrency = append(cfg.BaselineConcurrency, n)
		}
		return nil
	})
	flag.IntVar(&cfg.CAWorkers, "ca-workers", cfg.CAWorkers, "the CA baseline's concurrency (the ca-operator's default --workers)")
	flag.IntVar(&cfg.ScaleCerts, "scale-certs", cfg.ScaleCerts, "Ready Certificates of the last scale point (RSS, restart); 0 leaves it out")
	flag.StringVar(&cfg.ProfileDir, "profile-dir", "", "run the cert-operator with --profiling and store its CPU, heap, allocation, mutex and block profiles here")
	flag.IntVar(&cfg.ProfileSeconds, "profile-seconds", cfg.ProfileSeconds, "length of the CPU profile taken from the start of the issuance run")
	flag.IntVar(&cfg.Creators, "creators", cfg.Creators, "goroutines creating the objects 'at once'")
	flag.StringVar(&cfg.TTL, "ttl", cfg.TTL, "Certificate ttl")
	flag.DurationVar(&cfg.SettleTime, "settle", cfg.SettleTime, "wait before reading memory")
	flag.DurationVar(&cfg.PhaseTimeout, "phase-timeout", cfg.PhaseTimeout, "limit of each wait")
	flag.BoolVar(&cfg.SkipBaselines, "skip-baselines", false, "leave out both baselines")
	flag.Parse()
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	var err error
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err == nil {
		cfg.ResultsDir, err = filepath.Abs(cfg.ResultsDir)
	}
	if err == nil && cfg.ProfileDir != "" {
		cfg.ProfileDir, err = filepath.Abs(cfg.ProfileDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := harness.Run(ctx, cfg)
	if res != nil {
		fmt.Printf("results in %s (results.json, results.md, results.png)\n", cfg.ResultsDir)
		for _, t := range res.Targets {
			state := map[bool]string{true: "met", false: "MISSED"}[t.Met]
			if !t.Known {
				state = "not measured"
			}
			fmt.Printf("  %-55s want %-8s got %-40s %s\n", t.Name, t.Want, t.Got, state)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
