// Package site installs deploy/ on the local control plane the way a site installs it: deploy/default
// through a kustomize overlay that sets only what deploy/default says a site sets (Vault's
// address and, when given, the images), and Vault's Kubernetes auth with
// deploy/vault/configure-kubernetes-auth.sh. The demo and the end-to-end test both start here.
package site

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// Run runs a command to completion with extra environment variables; the caller decides where
// its output goes, and its error says what failed.
type Run func(ctx context.Context, extraEnv []string, name string, args ...string) error

// Image replaces the image of one operator: ghcr.io/clusterpki/<Operator> becomes Name:Tag.
type Image struct {
	Operator, Name, Tag string
}

// ApplyDefault writes into dir an overlay of env's checkout's deploy/default that points the
// clusterpki-vault ConfigMap at env's Vault and replaces images, applies it with kubectl
// (server-side, as env's administrator) and waits until the CRDs are Established.
func ApplyDefault(ctx context.Context, run Run, env *testenv.Env, dir string, images ...Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, filepath.Join(env.RepoRoot, "deploy", "default"))
	if err != nil {
		return err
	}
	var k strings.Builder
	fmt.Fprintf(&k, `# deploy/default with what a site sets: the local Vault's address (and the images).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
`, rel)
	if len(images) > 0 {
		k.WriteString("images:\n")
		for _, im := range images {
			fmt.Fprintf(&k, "  - name: ghcr.io/clusterpki/%s\n    newName: %s\n    newTag: %s\n", im.Operator, im.Name, im.Tag)
		}
	}
	fmt.Fprintf(&k, `configMapGenerator:
  - name: clusterpki-vault
    behavior: merge
    literals:
      - vault-addr=%s
      - vault-public-addr=%s
`, env.VaultAddr, env.VaultAddr)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k.String()), 0o644); err != nil {
		return err
	}
	kubectl := func(args ...string) error {
		return run(ctx, nil, "kubectl", append([]string{"--kubeconfig=" + env.Kubeconfig}, args...)...)
	}
	if err := kubectl("apply", "--server-side", "-k", dir); err != nil {
		return err
	}
	return kubectl("wait", "--for=condition=Established", "--timeout=1m",
		"crd/certificateauthorities.clusterpki.dev", "crd/certificates.clusterpki.dev")
}

// ConfigureVaultAuth sets up Vault's Kubernetes auth on env with
// deploy/vault/configure-kubernetes-auth.sh of env's checkout, against env's API server, with a token
// reviewer ServiceAccount bound to system:auth-delegator (ClusterRoleBinding binding) whose
// token it writes into dir.
func ConfigureVaultAuth(ctx context.Context, run Run, env *testenv.Env, dir, binding string) error {
	const reviewer = "vault-token-reviewer"
	_, err := env.KubeClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: reviewer, Namespace: "kube-system"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	tok, err := env.ServiceAccountToken(ctx, "kube-system", reviewer, nil, 48*time.Hour)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	jwt := filepath.Join(dir, "reviewer.jwt")
	if err := os.WriteFile(jwt, []byte(tok), 0o600); err != nil {
		return err
	}
	vaultBin, err := testenv.Binary("vault")
	if err != nil {
		return err
	}
	return run(ctx, []string{
		"VAULT=" + vaultBin, "VAULT_ADDR=" + env.VaultAddr, "VAULT_TOKEN=" + env.VaultRootToken,
		"KUBERNETES_HOST=" + env.APIServerURL, "KUBERNETES_CA_FILE=" + env.CAFile,
		"TOKEN_REVIEWER_JWT_FILE=" + jwt,
	}, filepath.Join(env.RepoRoot, "deploy", "vault", "configure-kubernetes-auth.sh"))
}
