// Package bench runs a small version of the benchmark (bench/harness) so the harness cannot
// rot: 2 CAs, 50 Certificates, seconds-long memory, churn and restart phases. It asserts that
// results were written and that nothing churned or was re-issued, never timings.
package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/bench/harness"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and both operators")
	}
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	binDir := t.TempDir()
	for _, name := range []string{"ca-operator", "cert-operator"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), "./"+name)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s:\n%s", name, out)
	}
	cfg := harness.Quick()
	cfg.RepoRoot = root
	cfg.BinDir = binDir
	cfg.ResultsDir = t.TempDir()
	cfg.BaselineConcurrency = []int{2, 8}
	cfg.CAWorkers = 2
	cfg.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := harness.Run(ctx, cfg)
	require.NoError(t, err)

	for _, f := range []string{"results.json", "results.md", "results.png"} {
		st, err := os.Stat(filepath.Join(cfg.ResultsDir, f))
		require.NoError(t, err)
		require.Positive(t, st.Size(), f)
	}
	data, err := os.ReadFile(filepath.Join(cfg.ResultsDir, "results.json"))
	require.NoError(t, err)
	var back harness.Results
	require.NoError(t, json.Unmarshal(data, &back))

	require.Equal(t, cfg.Certs, res.Issuance.Operator.Count, "every Certificate Ready with its Secret")
	require.NotNil(t, res.Issuance.Baseline)
	require.Equal(t, cfg.Certs, res.Issuance.Baseline.Count)
	require.Equal(t, float64(cfg.Certs), res.Issuance.Issued, "one issuance per Certificate")
	require.Equal(t, cfg.ProvisionCAs, res.CAProvisioning.Operator.Count)
	require.NotNil(t, res.CAProvisioning.Baseline)
	require.Positive(t, res.Memory.CertOperatorMiB)
	require.Positive(t, res.Memory.CertOperatorWithSecretsMiB)

	require.Positive(t, res.Churn.CertSyncs, "the forced resync reached the cert-operator")
	require.Zero(t, res.Churn.VaultSignCalls, "zero churn: Vault sign calls")
	require.Zero(t, res.Churn.OperatorAPIWrites, "zero churn: operator API writes")
	require.Zero(t, res.Churn.CAOperatorVaultWrites, "zero churn: ca-operator Vault writes")
	require.Positive(t, res.Restart.ReobservedSeconds)
	require.Zero(t, res.Restart.Reissued, "restart re-issues nothing")
	require.Zero(t, res.Restart.VaultRequests, "restart signs nothing")

	require.Len(t, res.Issuance.Baselines, len(cfg.BaselineConcurrency), "the baseline ran at every concurrency")
	require.Contains(t, cfg.BaselineConcurrency, res.Issuance.BaselineConcurrency)
	require.Contains(t, res.OperatorArgs["cert-operator"], "--log-format=json", "the operator runs with the shipped Deployment's arguments")
	require.Positive(t, res.Shipped["cert-operator"].MemoryLimitMiB)
	require.Len(t, res.ScalePoints, 3, "scale points at certs, memory-certs and scale-certs")
	for _, sp := range res.ScalePoints {
		require.Positive(t, sp.CertOperatorMiB, "RSS at %d", sp.Certificates)
		require.Positive(t, sp.Restart.ReobservedSeconds, "restart at %d", sp.Certificates)
		require.Zero(t, sp.Restart.Reissued, "restart at %d re-issues nothing", sp.Certificates)
	}
}
