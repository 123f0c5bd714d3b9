package caoperator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

func TestProvisioningMatchesSpec(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "prov", "prov", func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.Roles = append(ca.Spec.Roles, v1alpha1.RoleSpec{
			Name: "admin", AllowAnyName: true, EnforceHostnames: ptr(false), Organizations: []string{"system:masters"},
			ExtKeyUsages: []v1alpha1.ExtKeyUsage{"ClientAuth"}, MaxTTL: "24h", StoreCertificates: true,
		})
	}))
	ca := waitReady(t, ns, "prov", metav1.ConditionTrue, "Provisioned")

	// Mounts, owned by this object.
	m := mounts(t)
	assert.Equal(t, "clusterpki:certificateauthority="+ns+"/prov", m["pki-prov-root"])
	assert.Equal(t, "clusterpki:certificateauthority="+ns+"/prov", m["pki-prov"])
	assert.Equal(t, "pki-prov-root", ca.Status.RootMount)
	assert.Equal(t, "pki-prov", ca.Status.IssuingMount)

	// The root in Vault is what status says, with the spec's name.
	root := parsePEM(t, vaultRead(t, "pki-prov-root/issuer/default/json")["certificate"].(string))[0]
	sum := sha256.Sum256(root.Raw)
	assert.Equal(t, hex.EncodeToString(sum[:]), ca.Status.Root.FingerprintSHA256)
	assert.Equal(t, "prov root", root.Subject.CommonName)
	assert.InDelta(t, 87600, root.NotAfter.Sub(root.NotBefore).Hours(), 1)

	// The issuing CA is signed by the root, lives shorter, and is the default issuer.
	issuing := parsePEM(t, vaultRead(t, "pki-prov/issuer/default/json")["certificate"].(string))[0]
	require.NoError(t, issuing.CheckSignatureFrom(root))
	assert.True(t, issuing.IsCA)
	assert.Equal(t, "prov root Issuing CA", issuing.Subject.CommonName)
	assert.InDelta(t, 8760, issuing.NotAfter.Sub(issuing.NotBefore).Hours(), 1)
	assert.Equal(t, ca.Status.Issuing.IssuerID, vaultRead(t, "pki-prov/config/issuers")["default"])

	// Roles as the spec says, on the issuing mount only.
	role := vaultRead(t, "pki-prov/roles/admin")
	assert.Equal(t, []any{"system:masters"}, role["organization"])
	assert.Equal(t, false, role["no_store"])
	assert.Equal(t, false, role["server_flag"])
	assert.Equal(t, "default", role["issuer_ref"])
	assert.Equal(t, json.Number("86400"), role["max_ttl"])
	assert.Nil(t, vaultRead(t, "pki-prov-root/roles/admin"), "roles never sit on the root")
	require.Len(t, ca.Status.Roles, 2)
	assert.Equal(t, v1alpha1.ProvisionedRole{Name: "admin", SignPath: "pki-prov/sign/admin", RevokePath: "pki-prov/revoke", StoresCertificates: true}, ca.Status.Roles[0])

	// URLs, CRL and auto-tidy configured.
	urls := vaultRead(t, "pki-prov/config/urls")
	assert.Equal(t, []any{env.VaultAddr + "/v1/pki-prov/ca"}, urls["issuing_certificates"])
	assert.Equal(t, true, vaultRead(t, "pki-prov-root/config/crl")["auto_rebuild"])
	assert.Equal(t, true, vaultRead(t, "pki-prov/config/auto-tidy")["enabled"])

	// A leaf verifies against the published root through the issuing CA.
	leaf, chain := signLeaf(t, "pki-prov/sign/server", "a.example.com")
	verifyWithRoot(t, ns, ca, leaf, chain)
	cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), "prov-ca", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "prov", cm.OwnerReferences[0].Name)
	hasEvent(t, ns, "prov", "Normal Provisioned")
}

func TestIssuingCARotationKeepsTrust(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "rot", "rot"))
	before := waitReady(t, ns, "rot", metav1.ConditionTrue, "Provisioned")
	oldLeaf, oldChain := signLeaf(t, "pki-rot/sign/server", "old.example.com")

	update(t, ns, "rot", func(ca *v1alpha1.CertificateAuthority) {
		ca.Annotations = map[string]string{v1alpha1.AnnotationRotateIssuer: time.Now().Format(time.RFC3339Nano)}
	})
	var after *v1alpha1.CertificateAuthority
	require.True(t, assertEventually(60*time.Second, func() bool {
		after = get(t, ns, "rot")
		return after.Status.Issuing != nil && after.Status.Issuing.IssuerID != before.Status.Issuing.IssuerID
	}), "the issuing CA was not rotated")
	hasEvent(t, ns, "rot", "Normal IssuerRotated")
	assert.Equal(t, before.Status.Root.FingerprintSHA256, after.Status.Root.FingerprintSHA256, "the root never changes")

	newLeaf, newChain := signLeaf(t, "pki-rot/sign/server", "new.example.com")
	verifyWithRoot(t, ns, after, oldLeaf, oldChain)
	verifyWithRoot(t, ns, after, newLeaf, newChain)
	assert.NotEqual(t, oldLeaf.AuthorityKeyId, newLeaf.AuthorityKeyId, "the new leaf is signed by the new issuing CA")

	// The request is answered once: the issuer stays put on later syncs.
	time.Sleep(5 * time.Second)
	assert.Equal(t, after.Status.Issuing.IssuerID, get(t, ns, "rot").Status.Issuing.IssuerID)
}

func TestRoleUpdateAndRemoval(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "roles", "roles", func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.Roles = append(ca.Spec.Roles, v1alpha1.RoleSpec{Name: "extra", AllowAnyName: true})
	}))
	waitReady(t, ns, "roles", metav1.ConditionTrue, "Provisioned")
	require.NotNil(t, vaultRead(t, "pki-roles/roles/extra"))

	update(t, ns, "roles", func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.Roles = ca.Spec.Roles[:1]
		ca.Spec.Roles[0].MaxTTL = "2h"
		ca.Spec.Roles[0].AllowedDomains = []string{"example.org"}
	})
	ca := waitReady(t, ns, "roles", metav1.ConditionTrue, "Provisioned")
	require.True(t, assertEventually(30*time.Second, func() bool { return vaultRead(t, "pki-roles/roles/extra") == nil }), "removed role still in Vault")
	role := vaultRead(t, "pki-roles/roles/server")
	assert.Equal(t, json.Number("7200"), role["max_ttl"])
	assert.Equal(t, []any{"example.org"}, role["allowed_domains"])
	assert.Len(t, ca.Status.Roles, 1)
	hasEvent(t, ns, "roles", "Normal RoleDeleted")
}

func TestMountConflictBetweenNamespaces(t *testing.T) {
	startOperator(t, opToken)
	nsA, nsB := namespace(t), namespace(t)
	create(t, newCA(nsA, "first", "shared"))
	waitReady(t, nsA, "first", metav1.ConditionTrue, "Provisioned")
	fingerprint := get(t, nsA, "first").Status.Root.FingerprintSHA256

	create(t, newCA(nsB, "second", "shared"))
	second := waitReady(t, nsB, "second", metav1.ConditionFalse, "MountConflict")
	assert.Contains(t, conditionMessage(second), nsA+"/first")
	assert.Nil(t, second.Status.Root, "never handed someone else's CA")
	hasEvent(t, nsB, "second", "Warning MountConflict")
	// The first CA is untouched.
	assert.Equal(t, fingerprint, waitReady(t, nsA, "first", metav1.ConditionTrue, "Provisioned").Status.Root.FingerprintSHA256)
}

func TestForeignMountIsNotAdoptedUnlessAsked(t *testing.T) {
	startOperator(t, opToken)
	require.NoError(t, rootVault.Sys().Mount("pki-handmade", &vaultapi.MountInput{Type: "pki", Description: "made by hand"}))
	ns := namespace(t)
	create(t, newCA(ns, "hand", "handmade"))
	ca := waitReady(t, ns, "hand", metav1.ConditionFalse, "MountConflict")
	assert.Contains(t, conditionMessage(ca), "adoptExistingMounts")
	assert.Equal(t, "made by hand", mounts(t)["pki-handmade"], "a refused mount is left alone")

	update(t, ns, "hand", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.AdoptExistingMounts = true })
	waitReady(t, ns, "hand", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, "clusterpki:certificateauthority="+ns+"/hand", mounts(t)["pki-handmade"])
}

func TestOutOfBandDeletionIsRepaired(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "drift", "drift"))
	before := waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")

	// A role and the whole issuing mount deleted behind our back come back on a resync.
	_, err := rootVault.Logical().Delete("pki-drift/roles/server")
	require.NoError(t, err)
	require.NoError(t, rootVault.Sys().Unmount("pki-drift"))
	require.True(t, assertEventually(60*time.Second, func() bool {
		return vaultRead(t, "pki-drift/roles/server") != nil
	}), "role not recreated")
	after := waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")
	require.True(t, assertEventually(30*time.Second, func() bool {
		after = get(t, ns, "drift")
		return after.Status.Issuing.IssuerID != before.Status.Issuing.IssuerID
	}))
	assert.Equal(t, before.Status.Root.FingerprintSHA256, after.Status.Root.FingerprintSHA256)

	// The root mount deleted: a new root, a Warning, and a new fingerprint in status and ConfigMap.
	require.NoError(t, rootVault.Sys().Unmount("pki-drift-root"))
	require.True(t, assertEventually(60*time.Second, func() bool {
		after = get(t, ns, "drift")
		return after.Status.Root != nil && after.Status.Root.FingerprintSHA256 != before.Status.Root.FingerprintSHA256
	}), "root not recreated")
	hasEvent(t, ns, "drift", "Warning RootReplaced")
	after = waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")
	leaf, chain := signLeaf(t, "pki-drift/sign/server", "x.example.com")
	require.True(t, assertEventually(30*time.Second, func() bool {
		cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), "drift-ca", metav1.GetOptions{})
		return err == nil && len(parsePEM(t, cm.Data["ca.crt"])) == 1 &&
			hex.EncodeToString(sha(parsePEM(t, cm.Data["ca.crt"])[0].Raw)) == after.Status.Root.FingerprintSHA256
	}))
	verifyWithRoot(t, ns, after, leaf, chain)

	// The ConfigMap deleted comes back.
	require.NoError(t, env.KubeClient.CoreV1().ConfigMaps(ns).Delete(context.Background(), "drift-ca", metav1.DeleteOptions{}))
	require.True(t, assertEventually(30*time.Second, func() bool {
		_, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), "drift-ca", metav1.GetOptions{})
		return err == nil
	}))
}

func TestDeletionPolicies(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "keep", "keep"))
	create(t, newCA(ns, "drop", "drop", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }))
	waitReady(t, ns, "keep", metav1.ConditionTrue, "Provisioned")
	waitReady(t, ns, "drop", metav1.ConditionTrue, "Provisioned")

	for _, name := range []string{"keep", "drop"} {
		require.NoError(t, client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(context.Background(), name, metav1.DeleteOptions{}))
		gone(t, ns, name)
	}
	m := mounts(t)
	assert.Contains(t, m, "pki-keep-root", "Retain keeps the CA")
	assert.Contains(t, m, "pki-keep")
	assert.NotContains(t, m, "pki-drop-root", "Delete unmounts the CA")
	assert.NotContains(t, m, "pki-drop")
}

func TestRestartMidwayMakesNoDuplicateRoot(t *testing.T) {
	ns := namespace(t)
	op := startOperator(t, opToken)
	create(t, newCA(ns, "restart", "restart"))
	// Stop as soon as the root exists, before the rest is done.
	require.True(t, assertEventually(60*time.Second, func() bool {
		s, err := rootVault.Logical().List("pki-restart-root/issuers")
		return err == nil && s != nil
	}))
	op.stop()
	startOperator(t, opToken)
	ca := waitReady(t, ns, "restart", metav1.ConditionTrue, "Provisioned")
	s, err := rootVault.Logical().List("pki-restart-root/issuers")
	require.NoError(t, err)
	assert.Len(t, s.Data["keys"], 1, "exactly one root")
	assert.NotEmpty(t, ca.Status.Root.FingerprintSHA256)
}

func TestVaultStoppedThenBack(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "outage", "outage"))
	waitReady(t, ns, "outage", metav1.ConditionTrue, "Provisioned")

	env.StopVault()
	// A change made while Vault is down cannot be applied: the condition says why.
	update(t, ns, "outage", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.Roles[0].MaxTTL = "3h" })
	ca := waitReady(t, ns, "outage", metav1.ConditionFalse, "VaultUnavailable")
	assert.NotContains(t, conditionMessage(ca), opToken, "no token in status")

	require.NoError(t, env.StartVault(context.Background()))
	waitReady(t, ns, "outage", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, json.Number("10800"), vaultRead(t, "pki-outage/roles/server")["max_ttl"])
}

func TestShortLivedTokenIsRenewed(t *testing.T) {
	// A token living 6 seconds: the client renews it in the background, so work done long
	// after its first TTL still succeeds.
	short, err := policyToken("ca-operator", "6s")
	require.NoError(t, err)
	startOperator(t, short)
	ns := namespace(t)
	create(t, newCA(ns, "token", "token"))
	waitReady(t, ns, "token", metav1.ConditionTrue, "Provisioned")
	time.Sleep(10 * time.Second)
	update(t, ns, "token", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.Roles[0].MaxTTL = "5h" })
	waitReady(t, ns, "token", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, json.Number("18000"), vaultRead(t, "pki-token/roles/server")["max_ttl"])
}

func TestExpiredTokenLeadsToANewLogin(t *testing.T) {
	// AppRole tokens that cannot live past 8 seconds: renewal stops working, and the client
	// must log in again rather than fail.
	require.NoError(t, rootVault.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
	_, err := rootVault.Logical().Write("auth/approle/role/ca-operator", map[string]any{
		"token_policies": []string{"ca-operator"}, "token_ttl": "4s", "token_max_ttl": "8s",
	})
	require.NoError(t, err)
	roleID := vaultRead(t, "auth/approle/role/ca-operator/role-id")["role_id"].(string)
	sec, err := rootVault.Logical().Write("auth/approle/role/ca-operator/secret-id", nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vc, err := vault.New(ctx, vault.Config{Addr: env.VaultAddr, Auth: vault.AuthAppRole, AppRoleRoleID: roleID,
		AppRoleSecretID: sec.Data["secret_id"].(string), Timeout: 10 * time.Second}, logrus.New())
	require.NoError(t, err)
	go vc.Start(ctx)
	before := vc.Raw().Token()
	time.Sleep(12 * time.Second) // past the token's max TTL
	_, err = vc.List(ctx, "list-mounts", "sys/policies/acl")
	if err != nil {
		// The policy may not allow listing policies: any answer but an expired-token one will do.
		assert.True(t, vault.IsPermissionDenied(err), "unexpected error: %v", err)
	}
	assert.NoError(t, vc.TokenValid())
	assert.NotEqual(t, before, vc.Raw().Token(), "a new login replaced the expired token")
	s, err := vc.Read(ctx, "lookup-self", "auth/token/lookup-self")
	require.NoError(t, err)
	assert.Contains(t, s.Data["policies"], "ca-operator")
}

// conditionMessage returns the Ready condition's message.
func conditionMessage(ca *v1alpha1.CertificateAuthority) string {
	for _, c := range ca.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
