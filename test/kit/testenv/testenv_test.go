package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error { env = e; return nil }))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestServerVersion(t *testing.T) {
	v, err := env.KubeClient.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Fatalf("gitVersion = %q, want v1.37.2", v.GitVersion)
	}
}

func TestRBACForbidsFreshServiceAccount(t *testing.T) {
	token, err := env.ServiceAccountToken(ctx(t), "rbac-test", "nobody", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(env.NewUserConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Secrets("rbac-test").List(ctx(t), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing secrets as a fresh ServiceAccount: err = %v, want Forbidden", err)
	}
}

func TestTokenRequest(t *testing.T) {
	token, err := env.ServiceAccountToken(ctx(t), "token-test", "vault-auth", []string{"vault"}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	review, err := env.KubeClient.AuthenticationV1().TokenReviews().Create(ctx(t), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"vault"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := review.Status
	if !st.Authenticated || st.User.Username != "system:serviceaccount:token-test:vault-auth" || !slices.Contains(st.Audiences, "vault") {
		t.Fatalf("token review = %+v", st)
	}
}

func TestKubeconfigAndEnvFile(t *testing.T) {
	if _, err := os.Stat(env.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "env")
	if err := env.WriteEnvFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "export VAULT_ADDR='" + env.VaultAddr + "'\n"
	if !strings.Contains(string(data), want) {
		t.Fatalf("env file lacks %q:\n%s", want, data)
	}
}

func TestInstallCRDs(t *testing.T) {
	dir := t.TempDir()
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.clusterpki.dev
spec:
  group: test.clusterpki.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	if err := os.WriteFile(filepath.Join(dir, "widgets.yaml"), []byte("---\n"+crd), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // create, then update
		if err := env.InstallCRDs(ctx(t), dir); err != nil {
			t.Fatal(err)
		}
	}
	list, err := env.KubeClient.Discovery().ServerResourcesForGroupVersion("test.clusterpki.dev/v1")
	if err != nil || len(list.APIResources) == 0 {
		t.Fatalf("discovery: %v %v", list, err)
	}
}

func vaultClient(t *testing.T) *vault.Client {
	c, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVaultUnsealed(t *testing.T) {
	h, err := vaultClient(t).Sys().HealthWithContext(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Initialized || h.Sealed || h.Standby || h.Version != "1.21.0" {
		t.Fatalf("health = %+v", h)
	}
}

func TestVaultPersistsAcrossRestart(t *testing.T) {
	c := vaultClient(t)
	if err := c.Sys().MountWithContext(ctx(t), "persist-test", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env.StopVault()
	if _, err := c.Sys().HealthWithContext(ctx(t)); err == nil {
		t.Fatal("vault still answers after StopVault")
	}
	if err := env.StartVault(ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Logf("vault restarted in %v", time.Since(start).Round(time.Millisecond))
	mounts, err := c.Sys().ListMountsWithContext(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mounts["persist-test/"]; !ok {
		t.Fatalf("mount persist-test/ lost across restart; mounts: %v", keys(mounts))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
