package certoperator

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// verifies reports whether the leaf in tls.crt chains to root through the intermediates there.
func verifies(t *testing.T, tlsCrt []byte, root *x509.Certificate) bool {
	t.Helper()
	chain := parseChain(t, tlsCrt)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// TestCAStatusCannotSendSigningToAnotherTenant rewrites a CA's status the way someone who can
// write certificateauthorities/status would, to point the cert-operator at another
// namespace's issuing mount, and checks that the cert-operator signs only on the mount it
// computes itself: the certificate chains to its own CA's root, never to the victim's.
func TestCAStatusCannotSendSigningToAnotherTenant(t *testing.T) {
	victimNS := newNamespace(t, "tenant-victim")
	victim := setupVaultCA(t, victimNS, "prod")
	createCA(t, victimNS, "ca", victim, true)

	ns := newNamespace(t, "evil")
	own := setupVaultCA(t, ns, "evil")
	obj := createCA(t, ns, "ca", own, true)

	// Paths rewritten to the victim's mounts; the root fingerprint is still our own.
	hostile := own
	hostile.RootMount, hostile.IssuingMount = victim.RootMount, victim.IssuingMount
	obj = setCAStatus(t, obj, hostile, true)
	require.Equal(t, victim.IssuingMount+"/sign/server", obj.Status.Roles[0].SignPath)
	startOperator(t, ns)

	createCertificate(t, certificate(ns, "admin"))
	waitReady(t, ns, "admin", metav1.ConditionTrue, "Issued")
	s := getSecret(t, ns, "admin-tls")
	assert.True(t, verifies(t, s.Data[corev1.TLSCertKey], own.Root), "signed by the namespace's own CA")
	assert.False(t, verifies(t, s.Data[corev1.TLSCertKey], victim.Root), "never signed by the victim's CA")
	assert.Empty(t, revokedSerials(t, victim.IssuingMount))

	// Now the fingerprint too claims the victim's root: the cert-operator still signs on its
	// own mount, sees Vault answer with a chain to another root, and refuses to store it.
	hostile.Root = victim.Root
	setCAStatus(t, getCA(t, ns, "ca"), hostile, true)
	time.Sleep(time.Second) // let the operator's cache see the rewritten status
	createCertificate(t, certificate(ns, "admin2"))
	cond := waitReady(t, ns, "admin2", metav1.ConditionFalse, "IssuanceFailed")
	assert.Contains(t, cond.Message, "is not the root CertificateAuthority")
	assert.Nil(t, getSecret(t, ns, "admin2-tls"), "nothing stored")
	for _, e := range events(t, ns, "admin2") {
		assert.False(t, strings.Contains(e, "Issued"), "no issuance: %s", e)
	}
}

// getCA reads the CertificateAuthority ns/name.
func getCA(t *testing.T, ns, name string) *v1alpha1.CertificateAuthority {
	t.Helper()
	ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx(t), name, metav1.GetOptions{})
	require.NoError(t, err)
	return ca
}
