// Package harness is the clusterpki benchmark (issue 7): it starts the local control plane and
// Vault, runs both operators as processes and measures issuance against a baseline doing only
// the unavoidable work, CA provisioning against its baseline, memory, zero churn and restart.
// cmd bench (the module's main package) and the small test in test/bench both call Run.
package harness

import (
	"errors"
	"time"
)

// Config holds every parameter of a run; Defaults and Quick fill it in.
type Config struct {
	// RepoRoot is the clusterpki checkout (CRDs, Vault policies); empty means testenv.RepoRoot().
	RepoRoot string
	// BinDir holds ca-operator and cert-operator binaries.
	BinDir string
	// ResultsDir receives results.json, results.md and results.png.
	ResultsDir string
	// WorkDir holds the control plane's data and the operators' logs; empty means a temporary
	// directory, removed at the end unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool

	// CAs is the number of CertificateAuthorities the issuance certificates are spread over.
	CAs int
	// Certs is the number of Certificates created at once for the issuance figure.
	Certs int
	// ProvisionCAs is the number of CertificateAuthorities provisioned at once (≥ CAs).
	ProvisionCAs int
	// MemoryCerts is the number of Ready Certificates for the memory and restart figures (≥ Certs).
	MemoryCerts int
	// UnrelatedSecrets is the number of unrelated Secrets added for the memory figure, each of
	// UnrelatedSecretBytes bytes of data.
	UnrelatedSecrets     int
	UnrelatedSecretBytes int
	// ChurnWindow is how long operator metrics are watched for churn after the forced resync.
	ChurnWindow time.Duration
	// BaselineConcurrency are the concurrencies the issuance baseline runs at, each on its own
	// namespace; the ratio is taken against the best throughput among them.
	BaselineConcurrency []int
	// CAWorkers is the CA baseline's concurrency: the ca-operator's default --workers.
	CAWorkers int
	// ScaleCerts is the number of Ready Certificates of the last scale point (RSS and restart),
	// beyond MemoryCerts; 0 leaves that phase out.
	ScaleCerts int
	// ProfileDir, when set, runs the cert-operator with --profiling and stores its CPU profile
	// of the first ProfileSeconds of the issuance run, and its heap, allocation, mutex and
	// block profiles after it (and the heap at each scale point).
	ProfileDir     string
	ProfileSeconds int
	// Creators is the number of goroutines creating objects "at once".
	Creators int
	// KeyAlgorithm and TTL of every Certificate.
	TTL string
	// SettleTime is how long to wait before reading memory.
	SettleTime time.Duration
	// PhaseTimeout bounds each wait (all Ready, restart re-observed).
	PhaseTimeout time.Duration
	// SkipBaselines leaves out both baselines (ratios are then not reported).
	SkipBaselines bool
	// Quick marks a small run (recorded in the results).
	Quick bool
	// Logf reports progress; nil means silent.
	Logf func(format string, args ...any) `json:"-"`
}

// Defaults returns the parameters of issue 7.
func Defaults() Config {
	return Config{
		CAs:                  10,
		Certs:                1000,
		ProvisionCAs:         100,
		MemoryCerts:          10000,
		UnrelatedSecrets:     10000,
		UnrelatedSecretBytes: 4096,
		ChurnWindow:          2 * time.Minute,
		BaselineConcurrency:  []int{8, 16, 32, 64},
		CAWorkers:            8,
		ScaleCerts:           50000,
		ProfileSeconds:       8,
		Creators:             16,
		TTL:                  "24h",
		SettleTime:           15 * time.Second,
		PhaseTimeout:         30 * time.Minute,
	}
}

// Quick returns small parameters for a run of about a minute (the test in test/bench).
func Quick() Config {
	c := Defaults()
	c.Quick = true
	c.CAs = 2
	c.Certs = 50
	c.ProvisionCAs = 4
	c.MemoryCerts = 100
	c.ScaleCerts = 200
	c.UnrelatedSecrets = 100
	c.ChurnWindow = 10 * time.Second
	c.SettleTime = 2 * time.Second
	c.PhaseTimeout = 5 * time.Minute
	return c
}

func (c *Config) validate() error {
	var errs []error
	if c.CAs < 1 || c.Certs < 1 || c.CAWorkers < 1 || c.Creators < 1 {
		errs = append(errs, errors.New("cas, certs, workers and creators must be at least 1"))
	}
	if len(c.BaselineConcurrency) == 0 && !c.SkipBaselines {
		errs = append(errs, errors.New("the issuance baseline needs at least one concurrency"))
	}
	for _, n := range c.BaselineConcurrency {
		if n < 1 {
			errs = append(errs, errors.New("every baseline concurrency must be at least 1"))
		}
	}
	if c.ScaleCerts != 0 && c.ScaleCerts <= c.MemoryCerts {
		errs = append(errs, errors.New("scale-certs must be 0 or more than memory-certs"))
	}
	if c.ProvisionCAs < c.CAs {
		errs = append(errs, errors.New("provision-cas must be at least cas (the issuance CAs are among them)"))
	}
	if c.MemoryCerts < c.Certs {
		errs = append(errs, errors.New("memory-certs must be at least certs"))
	}
	if c.BinDir == "" || c.ResultsDir == "" {
		errs = append(errs, errors.New("bin dir and results dir are required"))
	}
	return errors.Join(errs...)
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
