// Package e2e tests exactly what ships: the images built by scripts/images.sh, deploy/default
// applied with kubectl, Vault configured by deploy/vault/configure-kubernetes-auth.sh with the
// shipped policies, and both operators, run from the binaries inside their images, as the
// ServiceAccounts deploy/ creates, with the arguments, environment and volumes of the shipped
// Deployments, issuing deploy/examples on a real kube-apiserver and Vault.
//
// The local control plane has no controller-manager or kubelet, so Deployments never make pods:
// the test plays the kubelet's part for the operators with the kit's pod package.
package e2e

import (
	"os"
	"os/exec"
	"testing"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		return nil
	}))
}

// requireTool returns the path of an external program the test needs, or fails saying so.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("the end-to-end test needs %s on PATH: %v", name, err)
	}
	return p
}
