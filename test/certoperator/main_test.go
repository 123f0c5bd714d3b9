// Package certoperator tests the cert-operator against a real kube-apiserver and Vault: the CA
// is set up in Vault with the root token, its CertificateAuthority status is written as the
// ca-operator would, and the operator runs in-process with a token holding only its policy.
package certoperator

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
	"github.com/clusterpki/clusterpki/pkg/kube"
	pkgvault "github.com/clusterpki/clusterpki/pkg/vault"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
	"github.com/clusterpki/clusterpki/test/kit/vaultca"
)

var (
	env    *testenv.Env
	client versioned.Interface
	// opToken is a Vault token with only the cert-operator policy.
	opToken string
)

const policyName = "cert-operator"

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.InstallShippedCRDs(ctx); err != nil {
			return err
		}
		var err error
		if client, err = versioned.NewForConfig(e.RESTConfig); err != nil {
			return err
		}
		if err := e.WriteOperatorPolicy(ctx, policyName); err != nil {
			return err
		}
		opToken, err = e.PolicyToken(ctx, policyName, "2h")
		return err
	}))
}

// ctx returns a context that ends with the test or after two minutes.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// rootVault returns a Vault client with the root token.
func rootVault(t *testing.T) *vaultapi.Client {
	c, err := env.VaultClient()
	require.NoError(t, err)
	return c
}

// operatorVault returns a Vault client with the cert-operator's token.
func operatorVault(t *testing.T) *vaultapi.Client {
	c := rootVault(t)
	c.SetToken(opToken)
	return c
}

// vaultWriter is the operator's pkg/vault client, counting the writes by op.
type vaultWriter struct {
	c              *pkgvault.Client
	signs, revokes atomic.Int64
}

func (v *vaultWriter) Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error) {
	switch op {
	case "sign":
		v.signs.Add(1)
	case "revoke":
		v.revokes.Add(1)
	}
	return v.c.Write(ctx, op, path, data)
}

// operator is a cert-operator running in-process.
type operator struct {
	registry *prometheus.Registry
	vault    *vaultWriter
	cancel   context.CancelFunc
	done     chan error
}

// startOperator runs the cert-operator for namespace until the test ends (or stop is called),
// with the restricted Vault token and a fresh metrics registry.
func startOperator(t *testing.T, namespace string, configure ...func(*rest.Config)) *operator {
	t.Helper()
	return startOperatorWith(t, namespace, nil, configure...)
}

// startOperatorWith is startOperator with tune (when not nil) applied to the operator's Config.
func startOperatorWith(t *testing.T, namespace string, tune func(*certoperator.Config), configure ...func(*rest.Config)) *operator {
	t.Helper()
	restConfig := rest.CopyConfig(env.RESTConfig)
	for _, f := range configure {
		f(restConfig)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if testing.Verbose() {
		log.SetLevel(logrus.InfoLevel)
	}
	registry := prometheus.NewRegistry()
	vaultMetrics, err := pkgvault.NewMetrics(registry)
	require.NoError(t, err)
	c, err := pkgvault.New(ctx(t), pkgvault.Config{Addr: env.VaultAddr, Auth: pkgvault.AuthToken, Token: opToken, Metrics: vaultMetrics}, log)
	require.NoError(t, err)
	kubeClient, err := kubernetes.NewForConfig(restConfig)
	require.NoError(t, err)
	recorder, stopEvents := kube.NewEventRecorder(kubeClient, clusterpkischeme.Scheme, certoperator.Component)
	o := &operator{registry: registry, vault: &vaultWriter{c: c}, done: make(chan error, 1)}
	cfg := certoperator.Config{
		RESTConfig: restConfig,
		Vault:      o.vault,
		Recorder:   recorder,
		Namespace:  namespace,
		MaxBackoff: 20 * time.Second,
		Registry:   o.registry,
		Log:        log,
	}
	if tune != nil {
		tune(&cfg)
	}
	op, err := certoperator.New(cfg)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	go func() {
		defer stopEvents()
		o.done <- op.Run(runCtx, 2)
	}()
	t.Cleanup(o.stop)
	require.Eventually(t, func() bool { return op.Ready() == nil }, 30*time.Second, 50*time.Millisecond, "operator did not become ready")
	return o
}

// stop ends the operator and waits for it.
func (o *operator) stop() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	o.cancel = nil
}

// metric returns the value of the counter or gauge name with the given labels, 0 when absent.
func (o *operator) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := o.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
		return total
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// vaultCA is a two-level CA of cluster clusterID set up in Vault the way the ca-operator sets
// it up (the kit's vaultca recipe).
type vaultCA struct {
	vaultca.CA
	clusterID string
}

// roleOptions are the Vault role settings the tests use.
var roleOptions = map[string]any{
	"allowed_domains":    "example.com",
	"allow_subdomains":   true,
	"allow_bare_domains": true,
	"allow_localhost":    true,
	"allow_ip_sans":      true,
	"allowed_uri_sans":   "spiffe://cluster.local/*",
	"key_type":           "any",
	"max_ttl":            "2h",
	"no_store":           true,
	"require_cn":         false,
}

// setupVaultCA creates the CA of clusterID in namespace ns with the root token: its root and
// issuing mounts (the layout of pkg/pkipath), a root, an issuing CA signed by it, and the role
// "server".
func setupVaultCA(t *testing.T, ns, clusterID string) vaultCA {
	t.Helper()
	ca, err := vaultca.Create(ctx(t), rootVault(t), vaultca.Options{Namespace: ns, ClusterID: clusterID,
		CommonName: clusterID + " Root CA", Owner: "clusterpki: " + ns + "/ca", VaultAddr: env.VaultAddr,
		Roles: map[string]map[string]any{"server": roleOptions}})
	require.NoError(t, err)
	return vaultCA{CA: *ca, clusterID: clusterID}
}

// parseCert returns the first certificate of the PEM data.
func parseCert(t *testing.T, data string) *x509.Certificate {
	t.Helper()
	cert, err := contract.ParseCertificate([]byte(data))
	require.NoError(t, err)
	return cert
}

// newTenant creates namespace ns with a Ready CertificateAuthority "ca" of cluster clusterID,
// its CA set up in Vault, and returns the namespace and the CA.
func newTenant(t *testing.T, ns, clusterID string) (string, vaultCA) {
	t.Helper()
	newNamespace(t, ns)
	ca := setupVaultCA(t, ns, clusterID)
	createCA(t, ns, "ca", ca, true)
	return ns, ca
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, name string) string {
	t.Helper()
	_, err := env.KubeClient.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// createCA writes the CertificateAuthority ns/name for ca, with the status the ca-operator
// would publish (Ready as ready says).
func createCA(t *testing.T, ns, name string, ca vaultCA, ready bool) *v1alpha1.CertificateAuthority {
	t.Helper()
	obj, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx(t), &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: ca.clusterID,
			Root:      v1alpha1.RootCASpec{CommonName: ca.clusterID + " Root CA"},
			Roles:     []v1alpha1.RoleSpec{{Name: "server", AllowedDomains: []string{"example.com"}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return setCAStatus(t, obj, ca, ready)
}

// setCAStatus writes the status of obj for ca, Ready or not.
func setCAStatus(t *testing.T, obj *v1alpha1.CertificateAuthority, ca vaultCA, ready bool) *v1alpha1.CertificateAuthority {
	t.Helper()
	obj = obj.DeepCopy()
	obj.Status = ca.Status(obj.Name, obj.Generation, "")
	if !ready {
		c := &obj.Status.Conditions[0]
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "Provisioning", "creating mounts"
	}
	updated, err := client.ClusterpkiV1alpha1().CertificateAuthorities(obj.Namespace).UpdateStatus(ctx(t), obj, metav1.UpdateOptions{})
	require.NoError(t, err)
	return updated
}

// certificate builds a Certificate ns/name signed by CA "ca" with role "server", then applies opts.
func certificate(ns, name string, opts ...func(*v1alpha1.Certificate)) *v1alpha1.Certificate {
	c := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: name + "-tls",
			CommonName: name + ".example.com", AltNames: []string{name + ".example.com"}, TTL: "1h",
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// createCertificate creates cert.
func createCertificate(t *testing.T, cert *v1alpha1.Certificate) {
	t.Helper()
	_, err := client.ClusterpkiV1alpha1().Certificates(cert.Namespace).Create(ctx(t), cert, metav1.CreateOptions{})
	require.NoError(t, err)
}

// getCertificate returns ns/name as the API server has it.
func getCertificate(t *testing.T, ns, name string) *v1alpha1.Certificate {
	t.Helper()
	c, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx(t), name, metav1.GetOptions{})
	require.NoError(t, err)
	return c
}

// updateCertificate applies change to ns/name, retrying on conflicts.
func updateCertificate(t *testing.T, ns, name string, change func(*v1alpha1.Certificate)) {
	t.Helper()
	require.Eventually(t, func() bool {
		c := getCertificate(t, ns, name)
		change(c)
		_, err := client.ClusterpkiV1alpha1().Certificates(ns).Update(ctx(t), c, metav1.UpdateOptions{})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
}

// readyCondition returns the Ready condition of ns/name, nil when absent.
func readyCondition(t *testing.T, ns, name string) *metav1.Condition {
	c := getCertificate(t, ns, name)
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == v1alpha1.ConditionReady {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

// waitReady waits until ns/name has Ready with status and reason, and returns the condition.
func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var last *metav1.Condition
	require.Eventually(t, func() bool {
		last = readyCondition(t, ns, name)
		return last != nil && last.Status == status && last.Reason == reason
	}, 60*time.Second, 100*time.Millisecond, "Certificate %s/%s: want Ready=%s/%s, last %+v", ns, name, status, reason, &last)
	return last
}

// getSecret returns ns/name, or nil when it does not exist.
func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx(t), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	return s
}

// leafOf returns the leaf certificate in Secret s.
func leafOf(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	return parseCert(t, string(s.Data[corev1.TLSCertKey]))
}

// waitNewSerial waits until the Secret ns/name holds a certificate whose serial is not old, and
// the Certificate is Ready again, and returns the new leaf. It waits longer than the floor
// between issuances, which a re-issue other than for a spec change or a renew request awaits.
func waitNewSerial(t *testing.T, ns, cert, secretName string, old string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	require.Eventually(t, func() bool {
		s := getSecret(t, ns, secretName)
		if s == nil || len(s.Data[corev1.TLSCertKey]) == 0 {
			return false
		}
		l, err := contract.ParseCertificate(s.Data[corev1.TLSCertKey])
		if err != nil || l.SerialNumber.String() == old {
			return false
		}
		leaf = l
		return true
	}, certoperator.ReissueFloor+30*time.Second, 100*time.Millisecond, "no new certificate in %s/%s", ns, secretName)
	waitReady(t, ns, cert, metav1.ConditionTrue, "Issued")
	return leaf
}

// events returns the events of the Certificate ns/name as "Type Reason Message" strings.
func events(t *testing.T, ns, name string) []string {
	t.Helper()
	list, err := env.KubeClient.CoreV1().Events(ns).List(ctx(t), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	require.NoError(t, err)
	var out []string
	for _, e := range list.Items {
		out = append(out, strings.Join([]string{e.Type, e.Reason, e.Message}, " "))
	}
	return out
}

// waitEvent waits until ns/name has an event starting with prefix ("Normal Issued").
func waitEvent(t *testing.T, ns, name, prefix string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range events(t, ns, name) {
			if strings.HasPrefix(e, prefix) {
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "no event %q for %s/%s", prefix, ns, name)
}
