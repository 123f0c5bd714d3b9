package boundary

import (
	"context"
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestCertOperatorWritesOnlyItsSecrets: the cert-operator's ServiceAccount, with the shipped
// ClusterRole that reaches every Secret, creates and updates only Secrets labelled as
// clusterpki's, and no ConfigMap at all.
func TestCertOperatorWritesOnlyItsSecrets(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "cert-operator-secrets")
	adm := admin(t)
	op := serviceAccount(t, systemNamespace, "cert-operator")
	secrets := op.kube.CoreV1().Secrets(ns)
	const policy = "clusterpki-cert-operator-secrets"

	foreign, err := adm.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "database-password", Labels: map[string]string{"app": "db"}},
		Data:       map[string][]byte{"password": []byte("hunter2")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("creating an unlabelled Secret", func(t *testing.T) {
		_, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, metav1.CreateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the cert-operator may create only Secrets labelled app.kubernetes.io/managed-by=clusterpki and clusterpki.dev/certificate=<Certificate>",
			"Secret "+ns+"/unlabelled is not")
	})
	t.Run("creating a Secret labelled by another manager", func(t *testing.T) {
		labels := labelledAsCertificates("web")
		labels["app.kubernetes.io/managed-by"] = "helm"
		_, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "helms", Labels: labels}}, metav1.CreateOptions{})
		requireRefused(t, err, policyRefusal(policy), "Secret "+ns+"/helms is not")
	})
	t.Run("updating an unlabelled Secret", func(t *testing.T) {
		s := foreign.DeepCopy()
		s.Data["password"] = []byte("changed")
		_, err := secrets.Update(ctx, s, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the cert-operator may update only Secrets already labelled",
			"Secret "+ns+"/database-password is not clusterpki's")
	})
	t.Run("adopting an unlabelled Secret by adding the labels", func(t *testing.T) {
		s := foreign.DeepCopy()
		maps.Copy(s.Labels, labelledAsCertificates("web"))
		_, err := secrets.Update(ctx, s, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy), "Secret "+ns+"/database-password is not clusterpki's")
	})
	got, err := adm.kube.CoreV1().Secrets(ns).Get(ctx, foreign.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, foreign.ResourceVersion, got.ResourceVersion, "the foreign Secret was never written")

	t.Run("its own Secrets", func(t *testing.T) {
		s, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "web-tls", Labels: labelledAsCertificates("web")},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: nil, corev1.TLSPrivateKeyKey: nil},
		}, metav1.CreateOptions{})
		require.NoError(t, err, "a Secret labelled as clusterpki's is created")
		s.Labels["team"] = "web"
		s, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		require.NoError(t, err, "and updated")

		delete(s.Labels, "clusterpki.dev/certificate")
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the cert-operator may not remove the labels app.kubernetes.io/managed-by=clusterpki and clusterpki.dev/certificate from Secret "+ns+"/web-tls")
	})
	t.Run("ConfigMaps", func(t *testing.T) {
		cms := op.kube.CoreV1().ConfigMaps(ns)
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, metav1.CreateOptions{})
		requireRefused(t, err, rbacRefusal(op, "create", "configmaps"))
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: labelledAsCAs("ca")}}, metav1.CreateOptions{})
		requireRefused(t, err, rbacRefusal(op, "create", "configmaps"))
		cm, err := adm.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		cm.Data = map[string]string{"x": "y"}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		requireRefused(t, err, rbacRefusal(op, "update", "configmaps"))
	})
}

// TestCAOperatorWritesOnlyItsConfigMaps: the ca-operator's ServiceAccount, with the shipped
// ClusterRole that reaches every ConfigMap, creates and updates only ConfigMaps labelled as
// clusterpki's, and no Secret at all.
func TestCAOperatorWritesOnlyItsConfigMaps(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "ca-operator-configmaps")
	adm := admin(t)
	op := serviceAccount(t, systemNamespace, "ca-operator")
	cms := op.kube.CoreV1().ConfigMaps(ns)
	const policy = "clusterpki-ca-operator-configmaps"

	foreign, err := adm.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config"},
		Data:       map[string]string{"ClusterConfiguration": "..."},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("creating an unlabelled ConfigMap", func(t *testing.T) {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ca-ca"}}, metav1.CreateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the ca-operator may create only ConfigMaps labelled app.kubernetes.io/managed-by=clusterpki and clusterpki.dev/certificate-authority=<CertificateAuthority>",
			"ConfigMap "+ns+"/ca-ca is not")
	})
	t.Run("updating an unlabelled ConfigMap", func(t *testing.T) {
		cm := foreign.DeepCopy()
		cm.Data["ClusterConfiguration"] = "changed"
		_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the ca-operator may update only ConfigMaps already labelled",
			"ConfigMap "+ns+"/kubeadm-config is not clusterpki's")
	})
	t.Run("adopting an unlabelled ConfigMap by adding the labels", func(t *testing.T) {
		cm := foreign.DeepCopy()
		cm.Labels = labelledAsCAs("ca")
		_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy), "ConfigMap "+ns+"/kubeadm-config is not clusterpki's")
	})
	got, err := adm.kube.CoreV1().ConfigMaps(ns).Get(ctx, foreign.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, foreign.ResourceVersion, got.ResourceVersion, "the foreign ConfigMap was never written")

	t.Run("its own ConfigMaps", func(t *testing.T) {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "ca-ca", Labels: labelledAsCAs("ca")},
			Data:       map[string]string{"ca.crt": "root"},
		}, metav1.CreateOptions{})
		require.NoError(t, err, "a ConfigMap labelled as clusterpki's is created")
		cm.Data["ca.crt"] = "new root"
		cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		require.NoError(t, err, "and updated")

		cm.Labels["app.kubernetes.io/managed-by"] = "someone-else"
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		requireRefused(t, err, policyRefusal(policy),
			"the ca-operator may not remove the labels app.kubernetes.io/managed-by=clusterpki and clusterpki.dev/certificate-authority from ConfigMap "+ns+"/ca-ca")
	})
	t.Run("Secrets", func(t *testing.T) {
		_, err := op.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: labelledAsCertificates("web")}}, metav1.CreateOptions{})
		requireRefused(t, err, rbacRefusal(op, "create", "secrets"))
	})
}

// TestOnlyEachOperatorWritesItsStatus: each operator writes its own kind's status and not the
// other's; a ServiceAccount of the same name in another namespace, even bound to the shipped
// ClusterRole, is not the operator.
func TestOnlyEachOperatorWritesItsStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "operator-status")
	adm := admin(t)
	ca, err := adm.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, certificateAuthority(ns, "ca"), metav1.CreateOptions{})
	require.NoError(t, err)
	cert, err := adm.pki.ClusterpkiV1alpha1().Certificates(ns).Create(ctx, certificate(ns, "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	caOp := serviceAccount(t, systemNamespace, "ca-operator")
	certOp := serviceAccount(t, systemNamespace, "cert-operator")

	ca.Status.IssuingMount = "clusterpki/" + ns + "/ca/issuing"
	ca, err = caOp.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	require.NoError(t, err, "the ca-operator writes CertificateAuthority status")
	cert.Status.SerialNumber = "01"
	cert, err = certOp.pki.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	require.NoError(t, err, "the cert-operator writes Certificate status")

	_, err = certOp.pki.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(certOp, "update", "certificateauthorities/status"))
	_, err = caOp.pki.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(caOp, "update", "certificates/status"))

	// The ca-operator reads Certificates (a root rotation counts them) and nothing more: a
	// stolen ca-operator token cannot point a tenant's Certificate at another CA, nor remove it.
	_, err = caOp.pki.ClusterpkiV1alpha1().Certificates(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err, "the ca-operator lists Certificates")
	moved := cert.DeepCopy()
	moved.Spec.CARef.Name = "elsewhere"
	_, err = caOp.pki.ClusterpkiV1alpha1().Certificates(ns).Update(ctx, moved, metav1.UpdateOptions{})
	requireRefused(t, err, rbacRefusal(caOp, "update", "certificates"))
	_, err = caOp.pki.ClusterpkiV1alpha1().Certificates(ns).Patch(ctx, cert.Name, types.MergePatchType,
		[]byte(`{"spec":{"caRef":{"name":"elsewhere"}}}`), metav1.PatchOptions{})
	requireRefused(t, err, rbacRefusal(caOp, "patch", "certificates"))
	err = caOp.pki.ClusterpkiV1alpha1().Certificates(ns).Delete(ctx, cert.Name, metav1.DeleteOptions{})
	requireRefused(t, err, rbacRefusal(caOp, "delete", "certificates"))

	// An impostor: a tenant's ServiceAccount named like the operator, which someone bound to the
	// operator's ClusterRole. RBAC lets it through; the policy checks the namespace too.
	impostor := serviceAccount(t, ns, "cert-operator")
	bind(t, "", "clusterpki-cert-operator", serviceAccountSubject(ns, "cert-operator"))
	cert.Status.SerialNumber = "02"
	_, err = impostor.pki.ClusterpkiV1alpha1().Certificates(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
	requireRefused(t, err, policyRefusal("clusterpki-certificate-status"),
		"refused for system:serviceaccount:"+ns+":cert-operator")
}
