package boundary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
)

// clients talk to the API server as one identity.
type clients struct {
	user string
	kube kubernetes.Interface
	pki  versioned.Interface
}

// newClients returns the clients of user, authenticated as cfg says.
func newClients(user string, cfg *rest.Config) (clients, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return clients{}, err
	}
	pki, err := versioned.NewForConfig(cfg)
	if err != nil {
		return clients{}, err
	}
	return clients{user: user, kube: kube, pki: pki}, nil
}

// admin returns clients with the test's cluster admin credentials (group system:masters).
func admin(t *testing.T) clients {
	t.Helper()
	c, err := newClients("clusterpki-admin", env.RESTConfig)
	require.NoError(t, err)
	return c
}

// person returns clients for a new user authenticated by a client certificate, as a person
// is; RBAC grants them nothing until a test binds them.
func person(t *testing.T, name string) clients {
	t.Helper()
	cfg, err := env.UserConfig(name)
	require.NoError(t, err)
	c, err := newClients(name, cfg)
	require.NoError(t, err)
	return c
}

// serviceAccount returns clients authenticated with a token of ServiceAccount ns/name from the
// TokenRequest API: the identity a pod of that ServiceAccount has.
func serviceAccount(t *testing.T, ns, name string) clients {
	t.Helper()
	tok, err := env.ServiceAccountToken(context.Background(), ns, name, nil, 0)
	require.NoError(t, err)
	c, err := newClients("system:serviceaccount:"+ns+":"+name, env.NewUserConfig(tok))
	require.NoError(t, err)
	return c
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, name string) string {
	t.Helper()
	_, err := env.KubeClient.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// bind grants subject the ClusterRole role in namespace ns (a RoleBinding), or cluster-wide
// when ns is empty (a ClusterRoleBinding).
func bind(t *testing.T, ns, role string, subject rbacv1.Subject) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s-%s", role, strings.NewReplacer(":", "-").Replace(subject.Name))
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}
	var err error
	if ns == "" {
		_, err = env.KubeClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
	} else {
		_, err = env.KubeClient.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
	}
	require.NoError(t, err)
	waitAuthorized(t, ns, role, subject)
}

// waitAuthorized waits until the API server's authorizer grants subject the first verb of the
// first rule of ClusterRole role in ns: RBAC sees a new binding a moment after it is created.
func waitAuthorized(t *testing.T, ns, role string, subject rbacv1.Subject) {
	t.Helper()
	ctx := context.Background()
	cr, err := env.KubeClient.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, cr.Rules, "ClusterRole %s has no rules", role)
	r := cr.Rules[0]
	username := subject.Name
	if subject.Kind == rbacv1.ServiceAccountKind {
		username = "system:serviceaccount:" + subject.Namespace + ":" + subject.Name
	}
	waitAllowed(t, username, authorizationv1.ResourceAttributes{
		Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0],
	})
}

// waitAllowed waits until the API server's authorizer allows username what attrs says.
func waitAllowed(t *testing.T, username string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: username, ResourceAttributes: &attrs,
	}}
	require.Eventually(t, func() bool {
		got, err := env.KubeClient.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		return err == nil && got.Status.Allowed
	}, 30*time.Second, 50*time.Millisecond, "RBAC never allowed %s %+v", username, attrs)
}

// user is the RBAC subject of a person.
func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// serviceAccountSubject is the RBAC subject of ServiceAccount ns/name.
func serviceAccountSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// requireRefused fails unless err is the API server's Forbidden answer and its message holds
// every fragment: who refused (RBAC or which policy) and why.
func requireRefused(t *testing.T, err error, fragments ...string) {
	t.Helper()
	require.Error(t, err, "the API server allowed it")
	require.Truef(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
	for _, f := range fragments {
		assert.Contains(t, err.Error(), f)
	}
}

// rbacRefusal is the fragment of RBAC's refusal of verb on resource.
func rbacRefusal(c clients, verb, resource string) string {
	return fmt.Sprintf("User %q cannot %s resource %q", c.user, verb, resource)
}

// policyRefusal is the fragment of a refusal by the shipped ValidatingAdmissionPolicy name.
func policyRefusal(name string) string {
	return fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request", name, name)
}

// certificate returns a valid Certificate signed by the CA "ca" of its namespace.
func certificate(ns, name string) *v1alpha1.Certificate {
	return &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: name + "-tls",
			CommonName: name + ".example.com",
		},
	}
}

// certificateAuthority returns a valid CertificateAuthority.
func certificateAuthority(ns, name string) *v1alpha1.CertificateAuthority {
	return &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: name,
			Root:      v1alpha1.RootCASpec{CommonName: name + " root"},
			Roles:     []v1alpha1.RoleSpec{{Name: "server", AllowedDomains: []string{"example.com"}}},
		},
	}
}

// labelledAsCertificates returns the labels the cert-operator puts on the Secret of
// Certificate cert (cert-operator/internal/secret).
func labelledAsCertificates(cert string) map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: "clusterpki", v1alpha1.LabelCertificate: cert}
}

// labelledAsCAs returns the labels the ca-operator puts on the ConfigMap of CA ca.
func labelledAsCAs(ca string) map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: "clusterpki", v1alpha1.LabelCertificateAuthority: ca}
}

// waitForPolicies waits until the API server enforces every shipped policy: policies and their
// parameter take effect a moment after they are created. Each is probed with a dry-run request
// it must refuse.
func waitForPolicies(ctx context.Context) error {
	const probeNS = "boundary-policy-probe"
	adm, err := newClients("clusterpki-admin", env.RESTConfig)
	if err != nil {
		return err
	}
	if _, err := adm.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNS}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	ca, err := adm.pki.ClusterpkiV1alpha1().CertificateAuthorities(probeNS).Create(ctx, certificateAuthority(probeNS, "ca"), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	cert, err := adm.pki.ClusterpkiV1alpha1().Certificates(probeNS).Create(ctx, certificate(probeNS, "probe"), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	operator := func(name string) (clients, error) {
		tok, err := env.ServiceAccountToken(ctx, systemNamespace, name, nil, 0)
		if err != nil {
			return clients{}, err
		}
		return newClients(name, env.NewUserConfig(tok))
	}
	caOp, err := operator("ca-operator")
	if err != nil {
		return err
	}
	certOp, err := operator("cert-operator")
	if err != nil {
		return err
	}
	dryRun := []string{metav1.DryRunAll}
	probes := map[string]func() error{
		"clusterpki-certificateauthority-status": func() error {
			_, err := adm.pki.ClusterpkiV1alpha1().CertificateAuthorities(probeNS).UpdateStatus(ctx, ca, metav1.UpdateOptions{DryRun: dryRun})
			return err
		},
		"clusterpki-certificate-status": func() error {
			_, err := adm.pki.ClusterpkiV1alpha1().Certificates(probeNS).UpdateStatus(ctx, cert, metav1.UpdateOptions{DryRun: dryRun})
			return err
		},
		"clusterpki-cert-operator-secrets": func() error {
			_, err := certOp.kube.CoreV1().Secrets(probeNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		},
		"clusterpki-ca-operator-configmaps": func() error {
			_, err := caOp.kube.CoreV1().ConfigMaps(probeNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		},
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for policy, probe := range probes {
			err := probe()
			if err == nil || !strings.Contains(err.Error(), policyRefusal(policy)) {
				last = fmt.Errorf("policy %s not enforced yet: the probe got %v", policy, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return errors.Join(err, last)
	}
	return nil
}
