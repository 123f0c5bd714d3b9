package boundary

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	clusterpkischeme "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/scheme"
	"github.com/clusterpki/clusterpki/ca-operator/caoperator"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
	"github.com/clusterpki/clusterpki/pkg/kube"
	pkgvault "github.com/clusterpki/clusterpki/pkg/vault"
)

// TestOperatorsAtWorkUnderThePolicies runs both operators in-process as their ServiceAccounts
// (tokens from the TokenRequest API, so the shipped ClusterRoles and the policies apply) with
// Vault tokens holding only the shipped Vault policies. People bound to the shipped roles
// create a CA and Certificates: the operators do all their work, and a Certificate whose
// secretName names a Secret that is not clusterpki's leaves it byte-for-byte unchanged.
func TestOperatorsAtWorkUnderThePolicies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := newNamespace(t, "tenant-at-work")
	adm := admin(t)
	precious, err := adm.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "precious", Labels: map[string]string{"app": "db"}},
		Data:       map[string][]byte{"password": []byte("hunter2")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	startCAOperator(t, ns)
	startCertOperator(t, ns)

	carol := person(t, "carol-at-work")
	bind(t, ns, "clusterpki-ca-manager", user(carol.user))
	ca := certificateAuthority(ns, "ca")
	ca.Spec.Roles[0].AllowSubdomains = true
	_, err = carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, ca, metav1.CreateOptions{})
	require.NoError(t, err)
	alice := person(t, "alice-at-work")
	bind(t, ns, "admin", user(alice.user))
	_, err = alice.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, certificate(ns, "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	squatter := certificate(ns, "squatter")
	squatter.Spec.SecretName = precious.Name
	_, err = alice.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, squatter, metav1.CreateOptions{})
	require.NoError(t, err)

	// The ca-operator wrote the CA's status and published its ConfigMap, the cert-operator wrote
	// the Certificate's status and its Secret: each passed the policies as itself.
	waitReady(t, func() (*metav1.Condition, error) {
		got, err := adm.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, "ca", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return ready(got.Status.Conditions), nil
	}, "True", "CertificateAuthority ca")
	cm, err := adm.kube.CoreV1().ConfigMaps(ns).Get(ctx, "ca-ca", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "ca", cm.Labels[v1alpha1.LabelCertificateAuthority])
	waitReady(t, func() (*metav1.Condition, error) {
		got, err := adm.pki.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return ready(got.Status.Conditions), nil
	}, "True", "Certificate web")
	s, err := adm.kube.CoreV1().Secrets(ns).Get(ctx, "web-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "web", s.Labels[v1alpha1.LabelCertificate])
	assert.NotEmpty(t, s.Data[corev1.TLSCertKey])

	cond := waitReady(t, func() (*metav1.Condition, error) {
		got, err := adm.pki.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "squatter", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return ready(got.Status.Conditions), nil
	}, "False", "Certificate squatter")
	assert.Equal(t, "SecretConflict", cond.Reason, cond.Message)
	got, err := adm.kube.CoreV1().Secrets(ns).Get(ctx, precious.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, precious.ResourceVersion, got.ResourceVersion, "the Secret that is not clusterpki's was never written")
	assert.Equal(t, precious.Data, got.Data)
	assert.Equal(t, precious.Labels, got.Labels)
	assert.Equal(t, precious.Annotations, got.Annotations)
	assert.Empty(t, got.OwnerReferences)
}

// ready returns the Ready condition of conds, nil if there is none.
func ready(conds []metav1.Condition) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == v1alpha1.ConditionReady {
			return &conds[i]
		}
	}
	return nil
}

// waitReady waits up to two minutes until get reports a Ready condition of status want, and
// returns it.
func waitReady(t *testing.T, get func() (*metav1.Condition, error), want, what string) *metav1.Condition {
	t.Helper()
	var last *metav1.Condition
	require.Eventually(t, func() bool {
		c, err := get()
		if err != nil || c == nil {
			return false
		}
		last = c
		return string(c.Status) == want
	}, 2*time.Minute, 200*time.Millisecond, "%s never Ready=%s; last %+v", what, want, &last)
	return last
}

// operatorRESTConfig is the operator's own identity: a token of its ServiceAccount in
// systemNamespace, the one deploy/default binds to its ClusterRole.
func operatorRESTConfig(t *testing.T, name string) *rest.Config {
	t.Helper()
	tok, err := env.ServiceAccountToken(context.Background(), systemNamespace, name, nil, time.Hour)
	require.NoError(t, err)
	return env.NewUserConfig(tok)
}

// vaultToken returns a Vault token holding only the shipped policy deploy/vault/<name>.hcl.
func vaultToken(t *testing.T, name string) string {
	t.Helper()
	root, err := env.VaultClient()
	require.NoError(t, err)
	policy, err := os.ReadFile(filepath.Join(env.RepoRoot, "deploy", "vault", name+".hcl"))
	require.NoError(t, err)
	require.NoError(t, root.Sys().PutPolicy(name, string(policy)))
	renewable := true
	s, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{
		Policies: []string{name}, TTL: "1h", NoParent: true, Renewable: &renewable, DisplayName: "boundary-" + name,
	})
	require.NoError(t, err)
	return s.Auth.ClientToken
}

// operatorLog returns a logger that writes to the test's log when -v is given.
func operatorLog(t *testing.T, name string) logrus.FieldLogger {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if testing.Verbose() {
		log.SetLevel(logrus.InfoLevel)
	}
	return log.WithField("operator", name)
}

// runUntilCleanup runs run until the test ends, then waits for it to return.
func runUntilCleanup(t *testing.T, name string, run func(context.Context) error, readyFn func() error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("%s: %v", name, err)
		}
		stop()
	})
	require.Eventually(t, func() bool { return readyFn() == nil }, 30*time.Second, 50*time.Millisecond, "%s did not become ready", name)
}

// operatorDeps returns what an operator called name needs to run as its ServiceAccount: the
// ServiceAccount's REST config, a logger, a Vault client holding only the operator's shipped
// policy (stopped at cleanup) and an event recorder reporting as component.
func operatorDeps(t *testing.T, name, component string) (*rest.Config, logrus.FieldLogger, *pkgvault.Client, record.EventRecorder, func()) {
	t.Helper()
	restConfig := operatorRESTConfig(t, name)
	log := operatorLog(t, name)
	vctx, vcancel := context.WithCancel(context.Background())
	t.Cleanup(vcancel)
	vc, err := pkgvault.New(vctx, pkgvault.Config{Addr: env.VaultAddr, Auth: pkgvault.AuthToken, Token: vaultToken(t, name), Timeout: 10 * time.Second}, log)
	require.NoError(t, err)
	go vc.Start(vctx)
	c, err := newClients(name, restConfig)
	require.NoError(t, err)
	recorder, stopEvents := kube.NewEventRecorder(c.kube, clusterpkischeme.Scheme, component)
	return restConfig, log, vc, recorder, stopEvents
}

// startCAOperator runs the ca-operator for namespace ns as its ServiceAccount.
func startCAOperator(t *testing.T, ns string) {
	t.Helper()
	restConfig, log, vc, recorder, stopEvents := operatorDeps(t, "ca-operator", caoperator.Component)
	op, err := caoperator.New(caoperator.Config{
		RESTConfig: restConfig, Vault: vc, Recorder: recorder, VaultPublicAddr: env.VaultAddr,
		Namespace: ns, Log: log,
	})
	require.NoError(t, err)
	runUntilCleanup(t, "ca-operator", func(ctx context.Context) error { return op.Run(ctx, 2) }, op.Ready, stopEvents)
}

// startCertOperator runs the cert-operator for namespace ns as its ServiceAccount.
func startCertOperator(t *testing.T, ns string) {
	t.Helper()
	restConfig, log, vc, recorder, stopEvents := operatorDeps(t, "cert-operator", certoperator.Component)
	op, err := certoperator.New(certoperator.Config{
		RESTConfig: restConfig, Vault: vc, Recorder: recorder, Namespace: ns,
		MaxBackoff: 10 * time.Second, Log: log, Registry: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	runUntilCleanup(t, "cert-operator", func(ctx context.Context) error { return op.Run(ctx, 2) }, op.Ready, stopEvents)
}
