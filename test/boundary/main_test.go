// Package boundary tests the Kubernetes boundary that deploy/ ships (issue 11) on a real
// kube-apiserver: deploy/default applied with kubectl as a user would, then people made with
// client certificates from the API server's client CA and bound to the shipped roles, and the
// operators' own ServiceAccounts, each trying what they may and may not do. Every refusal is
// asserted with the message that says who refused it (RBAC or which admission policy) and why.
//
// The local control plane runs no kube-controller-manager, so nothing fills the built-in
// aggregated ClusterRoles (admin, edit, view); the test plays that controller's part (see
// site.AggregateBuiltinRoles), reading the selectors from the API server's own roles.
package boundary

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/site"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

const (
	// systemNamespace is where deploy/default installs the operators.
	systemNamespace = "clusterpki-system"
	// Usernames of the operators' ServiceAccounts as deploy/default makes them.
	caOperatorUser   = "system:serviceaccount:" + systemNamespace + ":ca-operator"
	certOperatorUser = "system:serviceaccount:" + systemNamespace + ":cert-operator"
)

var env *testenv.Env

// TestMain starts the control plane, applies deploy/default, fills the aggregated roles and
// waits until the policies are enforced.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := applyDefault(ctx); err != nil {
			return err
		}
		if err := site.AggregateBuiltinRoles(ctx, env.KubeClient); err != nil {
			return err
		}
		return waitForPolicies(ctx)
	}))
}

// applyDefault applies deploy/default exactly as README says, with kubectl, and waits for the
// CRDs. The Deployments it creates never run: there is no kubelet, and no operator is needed.
func applyDefault(ctx context.Context) error {
	if out, err := kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(env.RepoRoot, "deploy", "default")); err != nil {
		return fmt.Errorf("kubectl apply -k deploy/default: %w\n%s", err, out)
	}
	if out, err := kubectl(ctx, "wait", "--for=condition=Established", "--timeout=1m",
		"crd/certificateauthorities.clusterpki.dev", "crd/certificates.clusterpki.dev"); err != nil {
		return fmt.Errorf("wait for the CRDs: %w\n%s", err, out)
	}
	return nil
}

// kubectl runs kubectl as the admin of the test API server.
func kubectl(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}
