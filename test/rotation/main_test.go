// Package rotation tests a CertificateAuthority's root rotation (issue 15) end to end, with
// both operators as they ship: deploy/default applied with kubectl, Vault's Kubernetes auth set
// up by deploy/vault/configure-kubernetes-auth.sh with the shipped policies, and each operator
// built with `make build` and run as its Deployment's pod would run (the kit's pod package:
// the container's arguments, environment and volumes, its ServiceAccount's tokens, leader
// election on). Only --rotation-reissue-interval is changed, by the test that measures it.
//
// The tests, all against a real kube-apiserver and Vault (with a file audit device, so every
// request Vault answered can be counted):
//   - TrustMatrix: before, in every phase and after, every Secret's chain verifies against
//     the old root alone (until Retiring), the new root alone (exactly when issued under it)
//     and the Secret's own ca.crt; trust is refreshed in place, each Secret re-issued once.
//   - KilledInEveryPhase: each operator is SIGKILLed when a CA first reaches each phase and
//     started again; every rotation completes once, with exactly one new root in Vault.
//   - ReissueRateBound: the cert-operator's --rotation-reissue-interval, observed on Secrets
//     and on Vault's audit log, and its counter of bounded re-issues.
//   - TenantBoundary: a tenant may request its own rotation, and nothing more.
//
// The matrix, the kills and the boundary run at the same time (a rotation takes at least
// rotationOverlap, 1m), and the operators' kills hit every rotation under way; the rate bound
// runs last with a cert-operator of its own, since the bound is one bucket per process.
package rotation

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/test/kit/site"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// systemNamespace is where deploy/default installs the operators.
const systemNamespace = "clusterpki-system"

var (
	env *testenv.Env
	// binaries are the operators built from this checkout, by name.
	binaries map[string]string
	// auditLog is the file Vault's audit device writes every request and response to.
	auditLog string
)

// TestMain starts the control plane, builds the operators, installs deploy/default, sets up
// Vault's Kubernetes auth and audit device, and fills the aggregated roles the tenants get.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err error
		if binaries, err = site.BuildOperators(ctx, quiet, env.RepoRoot, filepath.Join(env.Dir, "bin")); err != nil {
			return err
		}
		if err := site.ApplyDefault(ctx, quiet, env, filepath.Join(env.Dir, "site")); err != nil {
			return err
		}
		if err := site.ConfigureVaultAuth(ctx, quiet, env, filepath.Join(env.Dir, "vault-auth"), "rotation-vault-token-reviewer"); err != nil {
			return err
		}
		if err := enableAudit(ctx); err != nil {
			return err
		}
		return site.AggregateBuiltinRoles(ctx, env.KubeClient)
	}))
}

// quiet runs a set-up command, keeping its output for the error only.
func quiet(ctx context.Context, extraEnv []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// enableAudit turns on a file audit device in Vault (with the root token), before either
// operator runs, so that every request they make is in auditLog.
func enableAudit(ctx context.Context) error {
	c, err := env.VaultClient()
	if err != nil {
		return err
	}
	// Not *.log: the environment prints the tail of every log in its folder when it fails.
	auditLog = filepath.Join(env.Dir, "vault-audit.jsonl")
	return c.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vaultapi.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": auditLog},
	})
}
