package boundary

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNamespaceAdminManagesCertificatesOnly: the built-in admin role, bound in a namespace,
// carries the aggregated clusterpki roles: Certificates yes, CertificateAuthorities read only,
// no status of either.
func TestNamespaceAdminManagesCertificatesOnly(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "tenant-admin")
	_, err := admin(t).pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	require.NoError(t, err)
	alice := person(t, "alice")
	bind(t, ns, "admin", user(alice.user))
	certs := alice.pki.ClusterpkiV1alpha1().Certificates(ns)
	cas := alice.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns)

	cert, err := certs.Create(ctx, certificate(ns, "web"), metav1.CreateOptions{})
	require.NoError(t, err, "a namespace admin creates Certificates (clusterpki-edit aggregated to admin)")
	cert.Spec.AltNames = []string{"www.example.com"}
	cert, err = certs.Update(ctx, cert, metav1.UpdateOptions{})
	require.NoError(t, err, "and changes them")
	_, err = cas.Get(ctx, "ca", metav1.GetOptions{})
	require.NoError(t, err, "and reads CertificateAuthorities (clusterpki-view aggregated to admin)")

	_, err = cas.Create(ctx, certificateAuthority(ns, "own-ca"), metav1.CreateOptions{})
	requireRefused(t, err, rbacRefusal(alice, "create", "certificateauthorities"))
	ca, err := cas.Get(ctx, "ca", metav1.GetOptions{})
	require.NoError(t, err)
	ca.Spec.Roles[0].AllowedDomains = []string{"evil.example"}
	_, err = cas.Update(ctx, ca, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(alice, "update", "certificateauthorities"))

	// The built-in admin role grants no status subresource: RBAC refuses first.
	cert.Status.SerialNumber = "01"
	_, err = certs.UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(alice, "update", "certificates/status"))
	ca.Status.ObservedGeneration = 1
	_, err = cas.UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(alice, "update", "certificateauthorities/status"))

	require.NoError(t, certs.Delete(ctx, "web", metav1.DeleteOptions{}), "and deletes Certificates")
}

// TestNamespaceOwnerWithEveryResourceCannotWriteStatus: a Role over all resources of the
// namespace passes RBAC for both status subresources; the admission policies refuse it.
func TestNamespaceOwnerWithEveryResourceCannotWriteStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "tenant-owner")
	adm := admin(t)
	_, err := adm.kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	bob := person(t, "bob")
	_, err = adm.kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bob-everything"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "everything"},
		Subjects:   []rbacv1.Subject{user(bob.user)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitAllowed(t, bob.user, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "update", Group: "clusterpki.dev", Resource: "certificates", Subresource: "status"})

	ca, err := bob.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	require.NoError(t, err)
	cert, err := bob.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, certificate(ns, "web"), metav1.CreateOptions{})
	require.NoError(t, err)

	// What a tenant would gain: the cert-operator signing with another tenant's mount.
	ca.Status.IssuingMount = "clusterpki/another-tenant/c1/issuing"
	_, err = bob.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	requireRefused(t, err, policyRefusal("clusterpki-certificateauthority-status"),
		"only the ca-operator ("+caOperatorUser+") may write certificateauthorities/status",
		"refused for bob on "+ns+"/ca")
	cert.Status.SerialNumber = "01"
	_, err = bob.pki.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	requireRefused(t, err, policyRefusal("clusterpki-certificate-status"),
		"only the cert-operator ("+certOperatorUser+") may write certificates/status",
		"refused for bob on "+ns+"/web")

	// Nor can a cluster admin: the policies do not ask RBAC.
	_, err = adm.pki.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	requireRefused(t, err, policyRefusal("clusterpki-certificate-status"), "refused for clusterpki-admin")
}

// TestCAManagerRoleIsBoundOnPurpose: CertificateAuthorities are created by whoever the platform
// binds to clusterpki-ca-manager, where it binds them and nowhere else.
func TestCAManagerRoleIsBoundOnPurpose(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "tenant-ca")
	other := newNamespace(t, "tenant-ca-other")
	carol := person(t, "carol")
	bind(t, ns, "admin", user(carol.user))
	bind(t, other, "admin", user(carol.user))

	_, err := carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	requireRefused(t, err, rbacRefusal(carol, "create", "certificateauthorities"))

	bind(t, ns, "clusterpki-ca-manager", user(carol.user))
	ca, err := carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	require.NoError(t, err, "bound to clusterpki-ca-manager, carol creates CertificateAuthorities")
	ca.Annotations = map[string]string{"clusterpki.dev/rotate-issuer": "now"}
	ca, err = carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Update(ctx, ca, metav1.UpdateOptions{})
	require.NoError(t, err, "and changes them")
	_, err = carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(carol, "update", "certificateauthorities/status"))

	_, err = carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(other).Create(ctx, certificateAuthority(other, "ca"), metav1.CreateOptions{})
	requireRefused(t, err, rbacRefusal(carol, "create", "certificateauthorities"))

	require.NoError(t, carol.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(ctx, "ca", metav1.DeleteOptions{}))
}

// TestViewerReadsOnly: the built-in view role reads both kinds and writes neither.
func TestViewerReadsOnly(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "tenant-view")
	adm := admin(t)
	_, err := adm.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = adm.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, certificate(ns, "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	victor := person(t, "victor")
	bind(t, ns, "view", user(victor.user))

	certs, err := victor.pki.ClusterpkiV1alpha1().Certificates(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, certs.Items, 1)
	cas, err := victor.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, cas.Items, 1)

	_, err = victor.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, certificate(ns, "mine"), metav1.CreateOptions{})
	requireRefused(t, err, rbacRefusal(victor, "create", "certificates"))
	err = victor.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(ctx, "ca", metav1.DeleteOptions{})
	requireRefused(t, err, rbacRefusal(victor, "delete", "certificateauthorities"))
}
