package plugintest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/plugin/internal/commands"
)

const ns = "tenant-a"

// plugin runs kubectl clusterpki with args against the test API server and returns its output;
// it fails the test when the command fails.
func plugin(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := pluginResult(args...)
	require.Equal(t, 0, code, "kubectl clusterpki %s: %s", strings.Join(args, " "), errOut)
	t.Logf("$ kubectl clusterpki %s\n%s", strings.Join(args, " "), out)
	return out
}

// pluginResult runs the command and returns its standard output, error output and exit code.
func pluginResult(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := commands.Execute(append(args, "--kubeconfig", env.Kubeconfig), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestPlugin applies deploy/examples and two Certificates that cannot be issued, waits for the
// operators, and checks every command of the plugin against what the API server and the
// Secrets hold.
func TestPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := versioned.NewForConfig(env.RESTConfig)
	require.NoError(t, err)
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.Kubeconfig, "apply", "-n", ns, "-f", filepath.Join(root, "deploy", "examples")).CombinedOutput()
	require.NoError(t, err, string(out))
	// One Certificate Vault refuses (a name the role does not allow), one naming a role the CA
	// does not have.
	for _, c := range []*v1alpha1.Certificate{
		{ObjectMeta: metav1.ObjectMeta{Name: "refused"}, Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "tenant-a"}, Role: "server", SecretName: "refused-tls", CommonName: "www.not-allowed.org", TTL: "24h"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "no-role"}, Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "tenant-a"}, Role: "missing", SecretName: "no-role-tls", CommonName: "etcd", TTL: "24h"}},
	} {
		_, err := client.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, c, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	examples := []string{"kube-apiserver", "kube-apiserver-etcd-client", "kube-apiserver-kubelet-client", "service-account-signer", "etcd-server", "etcd-peer", "admin"}
	require.Eventually(t, func() bool {
		for _, name := range examples {
			c, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !isReady(c.Status.Conditions) {
				return false
			}
		}
		for _, name := range []string{"refused", "no-role"} {
			c, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !isFalse(c.Status.Conditions) {
				return false
			}
		}
		return true
	}, 3*time.Minute, 500*time.Millisecond, "the examples did not all become Ready")

	t.Run("status counts Certificates by state", func(t *testing.T) {
		table := plugin(t, "status", "-n", ns)
		assert.Regexp(t, `(?m)^CA\s+READY\s+ROOT EXPIRES\s+ISSUING EXPIRES\s+ROOT ROTATION\s+CERTS\s+READY\s+FAILING\s+PENDING\s+RENEWING SOON$`, table)
		// Renewing soon: the Certificates whose renewal time falls within a day (the admin
		// certificate's short lifetime puts it there).
		list, err := client.ClusterpkiV1alpha1().Certificates(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		soon := 0
		for _, c := range list.Items {
			if c.Status.RenewalTime != nil && time.Until(c.Status.RenewalTime.Time) < 24*time.Hour {
				soon++
			}
		}
		assert.Regexp(t, fmt.Sprintf(`(?m)^tenant-a\s+True\s+\d{4}-\d\d-\d\d \(in \d+d\)\s+\d{4}-\d\d-\d\d \(in \d+d\)\s+-\s+9\s+7\s+2\s+0\s+%d$`, soon), table)

		var rows []struct {
			Namespace, Name, Ready string
			Certificates           map[string]int
		}
		require.NoError(t, json.Unmarshal([]byte(plugin(t, "status", "-A", "-o", "json")), &rows))
		var row *struct {
			Namespace, Name, Ready string
			Certificates           map[string]int
		}
		for i := range rows {
			if rows[i].Namespace == ns {
				row = &rows[i]
			}
		}
		require.NotNil(t, row, "status -A lists no CA of namespace %s", ns)
		assert.Equal(t, "True", row.Ready)
		assert.Equal(t, map[string]int{"total": 9, "ready": 7, "failing": 2, "pending": 0, "renewingSoon": soon}, row.Certificates)
		assert.Regexp(t, `(?m)^NAMESPACE\s+CA\s+READY`, plugin(t, "status", "-A"))
		require.NoError(t, yaml.Unmarshal([]byte(plugin(t, "status", "-n", ns, "-o", "yaml")), &rows))
	})

	t.Run("inspect decodes the Secret and checks key and chain", func(t *testing.T) {
		secret, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, "kube-apiserver-tls", metav1.GetOptions{})
		require.NoError(t, err)
		leaf := firstCert(t, secret.Data[corev1.TLSCertKey])
		cert, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "kube-apiserver", metav1.GetOptions{})
		require.NoError(t, err)

		view := plugin(t, "inspect", "cert", "kube-apiserver", "-n", ns)
		for _, want := range []string{
			"Certificate tenant-a/kube-apiserver  (CA tenant-a, Secret kube-apiserver-tls)",
			"Ready:        True Issued",
			"Subject:     CN=kube-apiserver",
			"DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", "IP:10.0.0.1",
			"server auth",
			"Serial:      " + contract.Serial(leaf.SerialNumber),
			"SHA-256:     " + contract.Fingerprint(leaf),
			"Issuer chain [1]",
			"ok    key matches certificate",
			"ok    chain verifies against the published root: 3 certificates up to tenant-a root CA",
			"ok    Secret's ca.crt is the published trust",
			"ok    status serial is the Secret's",
		} {
			assert.Contains(t, view, want)
		}
		assert.Regexp(t, `Normal\s+Issued\s+\S+\s+1\s+Issued certificate `+contract.Serial(leaf.SerialNumber), view, "the recent events")
		assert.NotContains(t, view, "FAIL")
		assert.Equal(t, cert.Status.SerialNumber, contract.Serial(leaf.SerialNumber), "the status and the plugin write serials alike")

		var report struct {
			Leaf   struct{ Serial, FingerprintSHA256 string }
			Checks []struct {
				Name string
				OK   bool
			}
		}
		require.NoError(t, json.Unmarshal([]byte(plugin(t, "inspect", "cert", "kube-apiserver", "-n", ns, "-o", "json")), &report))
		assert.Equal(t, cert.Status.SerialNumber, report.Leaf.Serial)
		assert.Equal(t, contract.Fingerprint(leaf), report.Leaf.FingerprintSHA256)
		require.Len(t, report.Checks, 4)
		for _, c := range report.Checks {
			assert.True(t, c.OK, c.Name)
		}

		// A Certificate whose Secret was never written says so instead of failing.
		view = plugin(t, "inspect", "cert", "refused", "-n", ns)
		assert.Contains(t, view, "FAIL  secret exists: Secret tenant-a/refused-tls does not exist (yet)")
	})

	t.Run("why follows the reason down to the CA and Vault's words", func(t *testing.T) {
		assert.Contains(t, plugin(t, "why", "kube-apiserver", "-n", ns), "Certificate tenant-a/kube-apiserver is Ready: nothing to explain.")

		refused := plugin(t, "why", "refused", "-n", ns)
		assert.Contains(t, refused, "Certificate tenant-a/refused is not Ready, because:")
		assert.Regexp(t, `1\. Certificate tenant-a/refused: Ready=False IssuanceFailed`, refused)
		assert.Contains(t, refused, "www.not-allowed.org", "Vault's refusal names the common name")
		assert.Regexp(t, `event Warning IssuanceFailed .*not allowed`, refused, "Vault's own words")
		assert.Regexp(t, `2\. CertificateAuthority tenant-a/tenant-a: Ready=True Provisioned`, refused)

		noRole := plugin(t, "why", "no-role", "-n", ns)
		assert.Regexp(t, `1\. Certificate tenant-a/no-role: Ready=False RoleNotFound`, noRole)
		assert.Contains(t, noRole, `has no provisioned role "missing"`)

		var report struct {
			Ready bool
			Chain []struct{ Object, Status, Reason string }
		}
		require.NoError(t, json.Unmarshal([]byte(plugin(t, "why", "no-role", "-n", ns, "-o", "json")), &report))
		assert.False(t, report.Ready)
		require.Len(t, report.Chain, 2)
		assert.Equal(t, "RoleNotFound", report.Chain[0].Reason)
		assert.Equal(t, "CertificateAuthority tenant-a/tenant-a", report.Chain[1].Object)
	})

	t.Run("why and status reach a CA that does not exist", func(t *testing.T) {
		const orphans = "orphans"
		_, err := env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: orphans}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = client.ClusterpkiV1alpha1().Certificates(orphans).Create(ctx, &v1alpha1.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: "lost"},
			Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "gone"}, Role: "server", SecretName: "lost-tls", CommonName: "etcd", TTL: "24h"},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			c, err := client.ClusterpkiV1alpha1().Certificates(orphans).Get(ctx, "lost", metav1.GetOptions{})
			return err == nil && isFalse(c.Status.Conditions)
		}, time.Minute, 200*time.Millisecond)

		why := plugin(t, "why", "lost", "-n", orphans)
		assert.Regexp(t, `1\. Certificate orphans/lost: Ready=False CANotFound`, why)
		assert.Contains(t, why, "2. CertificateAuthority orphans/gone: Ready=NotFound")
		assert.Contains(t, why, "caRef names a CertificateAuthority that does not exist in this namespace")
		assert.Regexp(t, `(?m)^gone\s+NotFound\s+-\s+-\s+-\s+1\s+0\s+1\s+0\s+0$`, plugin(t, "status", "-n", orphans))
	})

	t.Run("trust prints the published bundle", func(t *testing.T) {
		bundle := plugin(t, "trust", "tenant-a", "-n", ns)
		cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, "tenant-a-ca", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, cm.Data["ca.crt"], bundle)
		root := firstCert(t, []byte(bundle))
		ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "tenant-a", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, ca.Status.Root.FingerprintSHA256, contract.Fingerprint(root), "the bundle is the root the CA's status names")
		assert.Contains(t, plugin(t, "trust", "tenant-a", "-n", ns, "-o", "yaml"), "fingerprintSHA256: "+ca.Status.Root.FingerprintSHA256)
	})

	t.Run("renew makes the cert-operator re-issue", func(t *testing.T) {
		before, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "etcd-server", metav1.GetOptions{})
		require.NoError(t, err)
		out := plugin(t, "renew", "etcd-server", "-n", ns)
		assert.Contains(t, out, "Certificate tenant-a/etcd-server: requested (clusterpki.dev/renew=")
		require.Eventually(t, func() bool {
			c, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "etcd-server", metav1.GetOptions{})
			return err == nil && c.Status.SerialNumber != before.Status.SerialNumber && isReady(c.Status.Conditions)
		}, time.Minute, 200*time.Millisecond, "etcd-server was not re-issued")

		_, errOut, code := pluginResult("renew", "-n", ns)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "name Certificates or give --all")

		var done []struct{ Name, Annotation, Value string }
		require.NoError(t, json.Unmarshal([]byte(plugin(t, "renew", "--all", "-n", ns, "-o", "json")), &done))
		assert.Len(t, done, 9)
		list, err := client.ClusterpkiV1alpha1().Certificates(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, c := range list.Items {
			assert.Equal(t, done[0].Value, c.Annotations[v1alpha1.AnnotationRenew], c.Name)
		}
	})

	t.Run("rotate-issuer makes the ca-operator replace the issuing CA", func(t *testing.T) {
		before, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "tenant-a", metav1.GetOptions{})
		require.NoError(t, err)
		require.NotNil(t, before.Status.Issuing)
		assert.Contains(t, plugin(t, "rotate-issuer", "tenant-a", "-n", ns), "CertificateAuthority tenant-a/tenant-a: requested (clusterpki.dev/rotate-issuer=")
		require.Eventually(t, func() bool {
			ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "tenant-a", metav1.GetOptions{})
			return err == nil && ca.Status.Issuing != nil && ca.Status.Issuing.SerialNumber != before.Status.Issuing.SerialNumber
		}, time.Minute, 200*time.Millisecond, "the issuing CA was not replaced")
	})

	t.Run("rotate-root starts a root rotation that status shows", func(t *testing.T) {
		before, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "tenant-a", metav1.GetOptions{})
		require.NoError(t, err)
		require.Nil(t, before.Status.RootRotation)
		assert.Contains(t, plugin(t, "rotate-root", "tenant-a", "-n", ns), "CertificateAuthority tenant-a/tenant-a: requested (clusterpki.dev/rotate-root=")
		var phase v1alpha1.RootRotationPhase
		require.Eventually(t, func() bool {
			ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "tenant-a", metav1.GetOptions{})
			if err != nil || ca.Status.RootRotation == nil {
				return false
			}
			phase = ca.Status.RootRotation.Phase
			return ca.Status.RootRotation.Trigger == v1alpha1.RootRotationRequested && phase != v1alpha1.RootRotationPreparing
		}, time.Minute, 200*time.Millisecond, "no root rotation started")
		if phase != v1alpha1.RootRotationCompleted {
			assert.Regexp(t, `(?m)^tenant-a\s+True\s.*\s(Trusting|Moving|Overlap|Retiring)`, plugin(t, "status", "-n", ns))
		}
	})

	t.Run("errors name what is missing", func(t *testing.T) {
		_, errOut, code := pluginResult("inspect", "cert", "nope", "-n", ns)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, `certificates.clusterpki.dev "nope" not found`)
		_, errOut, code = pluginResult("status", "-o", "xml")
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "want table, json or yaml")
	})
}

func isReady(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func isFalse(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == v1alpha1.ConditionReady {
			return c.Status == metav1.ConditionFalse
		}
	}
	return false
}

func firstCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	c, err := contract.ParseCertificate(data)
	require.NoError(t, err)
	return c
}
