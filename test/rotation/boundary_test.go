package rotation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	clusterpkiv1alpha1 "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned/typed/clusterpki/v1alpha1"
)

// tenantBoundary is the attacker's view of a rotation: a tenant of one namespace and a
// neighbour's CA.
type tenantBoundary struct {
	own, other string
}

// prepareTenantBoundary creates both namespaces, a CA "ca" in each (without Certificates:
// their rotations need none) and the tenant's Certificate.
func prepareTenantBoundary(ctx context.Context, t *testing.T) *tenantBoundary {
	b := &tenantBoundary{own: "rotation-tenant", other: "rotation-neighbour"}
	for _, ns := range []string{b.own, b.other} {
		createNamespace(ctx, t, ns)
		createCA(ctx, t, ns, "ca", 0)
	}
	return b
}

// run checks what a tenant can do to rotations. Tina administers her namespace as deploy/roles
// lets a platform bind a tenant: the built-in admin role (clusterpki-view and -edit aggregated)
// plus clusterpki-ca-manager, both in her namespace only. She may request a rotation of her own
// CA (and it runs), but not of the neighbour's; she cannot write any CA's status (the phase or
// the trust bundle, which the cert-operator copies into every Secret) nor her Certificate's
// (the roots it reports, which the ca-operator counts to move the rotation on), neither through
// the status subresource (refused) nor through the object (the API server ignores status
// there). Olga, whose Role grants everything in her namespace, passes RBAC for status, and the
// shipped admission policies refuse her.
func (b *tenantBoundary) run(ctx context.Context, t *testing.T) {
	admin := pkiClient(t).ClusterpkiV1alpha1()
	tina := b.person(t, "tina")
	b.bindClusterRole(ctx, t, "admin", "tina")
	b.bindClusterRole(ctx, t, "clusterpki-ca-manager", "tina")
	waitAllowed(ctx, t, "tina", authorizationv1.ResourceAttributes{Namespace: b.own, Verb: "patch", Group: v1alpha1.GroupName, Resource: "certificateauthorities"})
	waitAllowed(ctx, t, "tina", authorizationv1.ResourceAttributes{Namespace: b.own, Verb: "create", Group: v1alpha1.GroupName, Resource: "certificates"})

	cert, err := tina.ClusterpkiV1alpha1().Certificates(b.own).Create(ctx, &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.own, Name: "web"},
		Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: "web", CommonName: "web.example.com"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("tina creates a Certificate in her namespace: %v", err)
	}

	// Her own CA: the request is accepted.
	if err := requestRotation(ctx, tina, b.own, "ca", "tina-1"); err != nil {
		t.Fatalf("tina requests a rotation of her own CA: %v", err)
	}
	// The neighbour's: RBAC refuses.
	err = requestRotation(ctx, tina, b.other, "ca", "tina-1")
	requireRefused(t, err, `User "tina" cannot patch resource "certificateauthorities"`, `in the namespace "`+b.other+`"`)

	// What a forged status would do: end the rotation early, or make every Secret trust her root.
	forgedRoot := selfSignedPEM(t)
	caStatus := map[string]any{"status": map[string]any{
		"trustBundle":  forgedRoot,
		"rootRotation": map[string]any{"phase": "Completed", "trigger": "Requested", "startTime": time.Now().UTC().Format(time.RFC3339)},
	}}
	for _, ns := range []string{b.own, b.other} {
		_, err := tina.ClusterpkiV1alpha1().CertificateAuthorities(ns).Patch(ctx, "ca", types.MergePatchType, jsonOf(t, caStatus), metav1.PatchOptions{}, "status")
		requireRefused(t, err, `User "tina" cannot patch resource "certificateauthorities/status"`)
	}
	certStatus := map[string]any{"status": map[string]any{
		"trustedRootsSHA256":    []string{strings.Repeat("ab", 32)},
		"rootFingerprintSHA256": strings.Repeat("cd", 32),
	}}
	_, err = tina.ClusterpkiV1alpha1().Certificates(b.own).Patch(ctx, cert.Name, types.MergePatchType, jsonOf(t, certStatus), metav1.PatchOptions{}, "status")
	requireRefused(t, err, `User "tina" cannot patch resource "certificates/status"`)

	// Through the objects themselves, which she may update: the status she sends is dropped.
	updateIgnoringStatus(ctx, t, "CertificateAuthority", func() error {
		ca, err := tina.ClusterpkiV1alpha1().CertificateAuthorities(b.own).Get(ctx, "ca", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ca.Status.TrustBundle = forgedRoot
		ca.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationCompleted, Trigger: v1alpha1.RootRotationRequested, StartTime: metav1.Now()}
		_, err = tina.ClusterpkiV1alpha1().CertificateAuthorities(b.own).Update(ctx, ca, metav1.UpdateOptions{})
		return err
	})
	updateIgnoringStatus(ctx, t, "Certificate", func() error {
		c, err := tina.ClusterpkiV1alpha1().Certificates(b.own).Get(ctx, cert.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Status.TrustedRootsSHA256 = []string{strings.Repeat("ab", 32)}
		c.Status.RootFingerprintSHA256 = strings.Repeat("cd", 32)
		_, err = tina.ClusterpkiV1alpha1().Certificates(b.own).Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	ca, err := admin.CertificateAuthorities(b.own).Get(ctx, "ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ca.Status.TrustBundle, forgedRoot) || (ca.Status.RootRotation != nil && ca.Status.RootRotation.Tag == "") {
		t.Errorf("tina's status reached the CA: %+v", ca.Status)
	}
	c, err := admin.Certificates(b.own).Get(ctx, cert.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.RootFingerprintSHA256 == strings.Repeat("cd", 32) {
		t.Errorf("tina's status reached the Certificate: %+v", c.Status)
	}

	// A namespace owner with every verb on every resource passes RBAC; the policies refuse.
	olga := b.person(t, "olga")
	b.bindEverything(ctx, t, "olga")
	waitAllowed(ctx, t, "olga", authorizationv1.ResourceAttributes{Namespace: b.own, Verb: "patch", Group: v1alpha1.GroupName, Resource: "certificateauthorities", Subresource: "status"})
	waitAllowed(ctx, t, "olga", authorizationv1.ResourceAttributes{Namespace: b.own, Verb: "patch", Group: v1alpha1.GroupName, Resource: "certificates", Subresource: "status"})
	waitForPolicy(ctx, t, admin, b.own)
	_, err = olga.ClusterpkiV1alpha1().CertificateAuthorities(b.own).Patch(ctx, "ca", types.MergePatchType, jsonOf(t, caStatus), metav1.PatchOptions{}, "status")
	requireRefused(t, err, policyRefusal("clusterpki-certificateauthority-status"), "refused for olga on "+b.own+"/ca")
	_, err = olga.ClusterpkiV1alpha1().Certificates(b.own).Patch(ctx, cert.Name, types.MergePatchType, jsonOf(t, certStatus), metav1.PatchOptions{}, "status")
	requireRefused(t, err, policyRefusal("clusterpki-certificate-status"), "refused for olga on "+b.own+"/web")
	err = requestRotation(ctx, olga, b.other, "ca", "olga-1")
	requireRefused(t, err, `User "olga" cannot patch resource "certificateauthorities"`)

	// Tina's request is answered; the neighbour's CA never rotates.
	eventually(ctx, t, readyLimit, "tina's rotation starts", func() error {
		ca, err := admin.CertificateAuthorities(b.own).Get(ctx, "ca", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if r := ca.Status.RootRotation; r == nil || r.Phase == "" || r.Trigger != v1alpha1.RootRotationRequested {
			return fmt.Errorf("status.rootRotation %+v", r)
		}
		return nil
	})
	neighbour, err := admin.CertificateAuthorities(b.other).Get(ctx, "ca", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := neighbour.Annotations[v1alpha1.AnnotationRotateRoot]; ok || neighbour.Status.RootRotation != nil {
		t.Errorf("the neighbour's CA was asked to rotate (%v) or rotates (%+v)", neighbour.Annotations, neighbour.Status.RootRotation)
	}
}

// person returns a client authenticated as user with a client certificate: RBAC grants them
// nothing until they are bound.
func (b *tenantBoundary) person(t *testing.T, user string) versioned.Interface {
	t.Helper()
	cfg, err := env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bindClusterRole binds user to ClusterRole role in the tenant's namespace.
func (b *tenantBoundary) bindClusterRole(ctx context.Context, t *testing.T, role, user string) {
	t.Helper()
	_, err := env.KubeClient.RbacV1().RoleBindings(b.own).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// bindEverything gives user a Role over every resource of the tenant's namespace.
func (b *tenantBoundary) bindEverything(ctx context.Context, t *testing.T, user string) {
	t.Helper()
	rbac := env.KubeClient.RbacV1()
	_, err := rbac.Roles(b.own).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rbac.RoleBindings(b.own).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "everything-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "everything"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForPolicy waits until the API server enforces the shipped status policies (they take
// effect a moment after they are created), probing with dry-run status writes as the
// cluster admin, which they must refuse.
func waitForPolicy(ctx context.Context, t *testing.T, admin clusterpkiv1alpha1.ClusterpkiV1alpha1Interface, ns string) {
	t.Helper()
	dryRun := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	probe := []byte(`{"status":{"observedGeneration":1}}`)
	eventually(ctx, t, time.Minute, "the status policies enforced", func() error {
		for policy, patch := range map[string]func() error{
			"clusterpki-certificateauthority-status": func() error {
				_, err := admin.CertificateAuthorities(ns).Patch(ctx, "ca", types.MergePatchType, probe, dryRun, "status")
				return err
			},
			"clusterpki-certificate-status": func() error {
				_, err := admin.Certificates(ns).Patch(ctx, "web", types.MergePatchType, probe, dryRun, "status")
				return err
			},
		} {
			if err := patch(); err == nil || !strings.Contains(err.Error(), policyRefusal(policy)) {
				return fmt.Errorf("policy %s not enforced yet: a dry run got %v", policy, err)
			}
		}
		return nil
	})
}

// waitAllowed waits until the API server's authorizer allows user what attrs says: RBAC sees
// a new binding a moment after it is created.
func waitAllowed(ctx context.Context, t *testing.T, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
	eventually(ctx, t, 30*time.Second, fmt.Sprintf("RBAC allows %s %+v", user, attrs), func() error {
		got, err := env.KubeClient.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if !got.Status.Allowed {
			return fmt.Errorf("not allowed: %s", got.Status.Reason)
		}
		return nil
	})
}

// updateIgnoringStatus runs update (a Get, a change of status, an Update of the object),
// again on a conflict with an operator's write; the API server must accept it.
func updateIgnoringStatus(ctx context.Context, t *testing.T, kind string, update func() error) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, update); err != nil {
		t.Fatalf("tina updates her %s (status changed): %v", kind, err)
	}
}

// requireRefused fails unless err is the API server's Forbidden answer holding every fragment.
func requireRefused(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server allowed it; want a refusal saying %q", fragments)
	}
	if !apierrors.IsForbidden(err) {
		t.Fatalf("want Forbidden, got %v", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("refusal %q does not say %q", err, f)
		}
	}
}

// policyRefusal is the fragment of a refusal by the shipped ValidatingAdmissionPolicy name.
func policyRefusal(name string) string {
	return fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request", name, name)
}

// jsonOf encodes v.
func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfSignedPEM returns a new self-signed CA certificate (its key is thrown away): the root
// an attacker would like every Secret of the namespace to trust.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return string(contract.EncodeCertificates(cert))
}
