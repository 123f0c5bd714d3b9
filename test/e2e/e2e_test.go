package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	vaultapi "github.com/hashicorp/vault/api"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/clusterpki/clusterpki/test/kit/pod"
	"github.com/clusterpki/clusterpki/test/kit/site"
)

const (
	// systemNamespace is where deploy/default installs the operators.
	systemNamespace = "clusterpki-system"
	// examplesNamespace is where the test applies deploy/examples.
	examplesNamespace = "e2e-examples"
	// version stamps the binaries in the images the test builds.
	version = "v0.0.0-e2e"
)

var operators = []string{"ca-operator", "cert-operator"}

// TestEndToEnd walks the path a user takes, in order: images, kubectl apply -k, Vault set-up,
// operators, examples; then the negative checks. Each step needs the ones before it.
func TestEndToEnd(t *testing.T) {
	scope := t // what must outlive a step (registry, binaries, operators) belongs to the whole test
	requireTool(t, "kubectl")
	requireTool(t, "openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	step := func(name string, f func(t *testing.T)) {
		start := time.Now()
		if !t.Run(name, f) {
			t.FailNow()
		}
		t.Logf("step %s: %v", name, time.Since(start).Round(time.Millisecond))
	}

	var reg string
	binaries := map[string]string{}
	step("images", func(t *testing.T) {
		reg = startRegistry(scope)
		buildImages(t, reg)
		for _, op := range operators {
			binaries[op] = checkImage(ctx, t, scope, reg, op)
		}
	})

	step("apply", func(t *testing.T) {
		applyDefault(ctx, t, reg)
		for _, op := range operators {
			d, err := env.KubeClient.AppsV1().Deployments(systemNamespace).Get(ctx, op, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := d.Spec.Template.Spec.Containers[0].Image, imageRef(reg, op); got != want {
				t.Errorf("deployment %s runs image %s, want %s", op, got, want)
			}
		}
	})

	step("vault", func(t *testing.T) { configureVault(ctx, t) })

	var pods []*pod.Pod
	step("operators", func(t *testing.T) {
		for _, op := range operators {
			// Two replicas, as the Deployment asks: one leads, the other stands by.
			for i := range 2 {
				pods = append(pods, startPod(ctx, t, scope, binaries[op], systemNamespace, op, fmt.Sprintf("%s-e2e-%d", op, i), ""))
			}
		}
		for _, p := range pods {
			checkHealth(t, p)
		}
		for _, op := range operators {
			checkLease(ctx, t, op)
		}
	})
	// The operators run until the test ends; their logs are printed if it fails.
	t.Cleanup(func() {
		for _, p := range pods {
			p.Stop()
		}
	})

	step("examples", func(t *testing.T) {
		kubectl(t, "create", "namespace", examplesNamespace)
		kubectl(t, "apply", "-n", examplesNamespace, "-f", filepath.Join(env.RepoRoot, "deploy", "examples"))
		for _, kind := range []string{"certificateauthorities", "certificates"} {
			out, err := runErr(nil, "kubectl", "--kubeconfig="+env.Kubeconfig, "wait", "-n", examplesNamespace,
				"--for=condition=Ready", "--timeout=5m", kind, "--all")
			if err != nil {
				status, _ := runErr(nil, "kubectl", "--kubeconfig="+env.Kubeconfig, "get", "-n", examplesNamespace, kind,
					"-o", `custom-columns=NAME:.metadata.name,CONDITIONS:.status.conditions[*].message`)
				t.Fatalf("kubectl wait for Ready %s: %v\n%s\n%s", kind, err, out, status)
			}
		}
		verifyExamples(ctx, t)
	})

	step("vault-policy", func(t *testing.T) { checkCertOperatorCannotMount(ctx, t) })

	step("rbac-one-verb-less", func(t *testing.T) {
		// The replicas stop (and release their Leases): the crippled one must lead.
		for _, p := range pods {
			p.Stop()
		}
		checkStatusUpdateForbidden(ctx, t, scope, binaries["cert-operator"])
	})
}

// startRegistry serves an in-memory OCI registry on loopback for the test's lifetime.
func startRegistry(t *testing.T) string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/clusterpki"
}

func imageRef(reg, op string) string { return reg + "/" + op + ":" + version }

// buildImages runs scripts/images.sh, the script behind make images, pushing to reg.
func buildImages(t *testing.T, reg string) {
	out := run(t, []string{
		"REGISTRY=" + reg, "VERSION=" + version, "COMMIT=e2e",
		"IMAGE_BIN_DIR=" + t.TempDir(),
	}, filepath.Join(env.RepoRoot, "scripts", "images.sh"))
	for _, op := range operators {
		if !strings.Contains(out, imageRef(reg, op)+"@sha256:") {
			t.Errorf("images.sh did not report pushing %s:\n%s", imageRef(reg, op), out)
		}
	}
}

// applyDefault applies deploy/default the way a user does, through an overlay that sets only
// what deploy/default says a site sets: the images and Vault's address.
func applyDefault(ctx context.Context, t *testing.T, reg string) {
	var images []site.Image
	for _, op := range operators {
		images = append(images, site.Image{Operator: op, Name: reg + "/" + op, Tag: version})
	}
	if err := site.ApplyDefault(ctx, runLogged(t), env, t.TempDir(), images...); err != nil {
		t.Fatal(err)
	}
}

// configureVault sets up Vault's Kubernetes auth with deploy/vault/configure-kubernetes-auth.sh,
// against the test API server.
func configureVault(ctx context.Context, t *testing.T) {
	if err := site.ConfigureVaultAuth(ctx, runLogged(t), env, t.TempDir(), "e2e-vault-token-reviewer"); err != nil {
		t.Fatal(err)
	}
}

// runLogged runs commands for the site package, logging their output to t.
func runLogged(t *testing.T) site.Run {
	return func(ctx context.Context, extraEnv []string, name string, args ...string) error {
		out, err := runErr(extraEnv, name, args...)
		t.Log(strings.TrimSpace(out))
		if err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
}

// checkHealth waits until the pod's liveness and readiness endpoints answer 200.
func checkHealth(t *testing.T, p *pod.Pod) {
	eventually(t, 2*time.Minute, p.Name+" healthy and ready", func() error {
		if done, _ := p.Process().Exited(); done {
			t.Fatal(p.Process().ExitError())
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code := get(p, path); code != 200 {
				return fmt.Errorf("%s answered %d", path, code)
			}
		}
		return nil
	})
}

// checkLease waits until one replica of op holds its Lease, the one the shipped Role allows.
func checkLease(ctx context.Context, t *testing.T, op string) {
	eventually(t, time.Minute, op+" leader", func() error {
		l, err := env.KubeClient.CoordinationV1().Leases(systemNamespace).Get(ctx, op, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if h := l.Spec.HolderIdentity; h == nil || *h == "" {
			return errors.New("lease held by nobody")
		}
		return nil
	})
}

// checkCertOperatorCannotMount logs in to Vault as the cert-operator (its ServiceAccount's
// token with audience vault) and tries to enable a PKI mount, which its policy must refuse,
// while the ca-operator's identity may read the mounts it made.
func checkCertOperatorCannotMount(ctx context.Context, t *testing.T) {
	login := func(op string) *vaultapi.Client {
		jwt, err := env.ServiceAccountToken(ctx, systemNamespace, op, []string{"vault"}, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c, err := env.VaultClient()
		if err != nil {
			t.Fatal(err)
		}
		c.ClearToken()
		s, err := c.Logical().WriteWithContext(ctx, "auth/kubernetes/login", map[string]any{"role": "clusterpki-" + op, "jwt": jwt})
		if err != nil {
			t.Fatalf("vault login as %s: %v", op, err)
		}
		c.SetToken(s.Auth.ClientToken)
		return c
	}
	err := login("cert-operator").Sys().MountWithContext(ctx, "clusterpki/"+examplesNamespace+"/intruder/issuing", &vaultapi.MountInput{Type: "pki"})
	if err == nil {
		t.Fatal("the cert-operator's Vault token enabled a mount; its policy must refuse")
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("enable mount as cert-operator: %v, want permission denied", err)
	}
	t.Logf("cert-operator enabling a mount: %s", strings.Join(strings.Fields(err.Error()), " "))
	if _, err := login("ca-operator").Logical().ReadWithContext(ctx, "sys/mounts/clusterpki/"+examplesNamespace+"/tenant-a/root"); err != nil {
		t.Errorf("ca-operator reading its mount: %v", err)
	}
}

// checkStatusUpdateForbidden runs a cert-operator whose ServiceAccount is bound to the shipped
// ClusterRole minus update on certificates/status, and expects it to fail visibly.
func checkStatusUpdateForbidden(ctx context.Context, t, scope *testing.T, binary string) {
	const sa = "cert-operator-one-verb-less"
	rbac := env.KubeClient.RbacV1()
	shipped, err := rbac.ClusterRoles().Get(ctx, "clusterpki-cert-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + sa}}
	removed := false
	for _, r := range shipped.Rules {
		if slices.Equal(r.Resources, []string{"certificates/status"}) {
			r.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "update" })
			removed = true
			if len(r.Verbs) == 0 {
				continue
			}
		}
		role.Rules = append(role.Rules, r)
	}
	if !removed {
		t.Fatal("the shipped ClusterRole has no rule for certificates/status")
	}
	if _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: systemNamespace}}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   subjects,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(systemNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + sa + "-leader-election"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "clusterpki-cert-operator-leader-election"},
		Subjects:   subjects,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := startPod(ctx, t, scope, binary, systemNamespace, "cert-operator", "cert-operator-e2e-limited", sa)

	cert := `apiVersion: clusterpki.dev/v1alpha1
kind: Certificate
metadata:
  name: one-verb-less
spec:
  caRef: {name: tenant-a}
  role: client
  secretName: one-verb-less
  commonName: one-verb-less
  ttl: 1h
`
	f := filepath.Join(t.TempDir(), "cert.yaml")
	writeFile(t, f, []byte(cert))
	kubectl(t, "apply", "-n", examplesNamespace, "-f", f)
	// The API server's refusal, as the operator logs it (JSON escapes its quotes).
	forbidden := func() string {
		for _, line := range strings.Split(p.Process().Log(), "\n") {
			if strings.Contains(line, "cannot update resource") && strings.Contains(line, "certificates/status") {
				return line
			}
		}
		return ""
	}
	eventually(t, 2*time.Minute, "the limited cert-operator reports the forbidden status update", func() error {
		if done, err := p.Process().Exited(); done {
			t.Fatalf("limited cert-operator exited: %v\n%s", err, p.Process().Log())
		}
		if forbidden() == "" {
			return errors.New("no log line saying it cannot update certificates/status yet")
		}
		return nil
	})
	t.Logf("limited cert-operator: %s", forbidden())
	c, err := env.KubeClient.CoreV1().RESTClient().Get().AbsPath("/apis/clusterpki.dev/v1alpha1/namespaces", examplesNamespace, "certificates", "one-verb-less").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Status struct {
			Conditions []metav1.Condition `json:"conditions"`
		} `json:"status"`
	}
	if err := yaml.Unmarshal(c, &obj); err != nil {
		t.Fatal(err)
	}
	if len(obj.Status.Conditions) != 0 {
		t.Errorf("a cert-operator without update on certificates/status wrote conditions %v", obj.Status.Conditions)
	}
}

// osChmod makes an extracted binary executable.
func osChmod(path string) error { return os.Chmod(path, 0o755) }
