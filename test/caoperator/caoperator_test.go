package caoperator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
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

	// Mounts below the prefix and the object's namespace, owned by this very object.
	m := mounts(t)
	assert.Equal(t, "clusterpki/"+ns+"/prov/root", rootOf(ns, "prov"))
	owner := "clusterpki:certificateauthority=" + ns + "/prov uid=" + string(ca.UID)
	assert.Equal(t, owner, m[rootOf(ns, "prov")])
	assert.Equal(t, owner, m[issuingOf(ns, "prov")])
	assert.Equal(t, rootOf(ns, "prov"), ca.Status.RootMount)
	assert.Equal(t, issuingOf(ns, "prov"), ca.Status.IssuingMount)

	// The root in Vault is what status says, with the spec's name.
	root := parsePEM(t, vaultRead(t, rootOf(ns, "prov")+"/issuer/default/json")["certificate"].(string))[0]
	assert.Equal(t, contract.Fingerprint(root), ca.Status.Root.FingerprintSHA256)
	assert.Equal(t, "prov root", root.Subject.CommonName)
	assert.InDelta(t, 87600, root.NotAfter.Sub(root.NotBefore).Hours(), 1)

	// The issuing CA is signed by the root, lives shorter, and is the default issuer.
	issuing := parsePEM(t, vaultRead(t, issuingOf(ns, "prov")+"/issuer/default/json")["certificate"].(string))[0]
	require.NoError(t, issuing.CheckSignatureFrom(root))
	assert.True(t, issuing.IsCA)
	assert.Equal(t, "prov root Issuing CA", issuing.Subject.CommonName)
	assert.InDelta(t, 8760, issuing.NotAfter.Sub(issuing.NotBefore).Hours(), 1)
	assert.Equal(t, ca.Status.Issuing.IssuerID, vaultRead(t, issuingOf(ns, "prov")+"/config/issuers")["default"])

	// Roles as the spec says, on the issuing mount only.
	role := vaultRead(t, issuingOf(ns, "prov")+"/roles/admin")
	assert.Equal(t, []any{"system:masters"}, role["organization"])
	assert.Equal(t, false, role["no_store"])
	assert.Equal(t, false, role["server_flag"])
	assert.Equal(t, "default", role["issuer_ref"])
	assert.Equal(t, json.Number("86400"), role["max_ttl"])
	assert.Nil(t, vaultRead(t, rootOf(ns, "prov")+"/roles/admin"), "roles never sit on the root")
	require.Len(t, ca.Status.Roles, 2)
	assert.Equal(t, v1alpha1.ProvisionedRole{Name: "admin", SignPath: issuingOf(ns, "prov") + "/sign/admin", RevokePath: issuingOf(ns, "prov") + "/revoke", StoresCertificates: true}, ca.Status.Roles[0])

	// URLs, CRL and auto-tidy configured.
	urls := vaultRead(t, issuingOf(ns, "prov")+"/config/urls")
	assert.Equal(t, []any{env.VaultAddr + "/v1/" + issuingOf(ns, "prov") + "/ca"}, urls["issuing_certificates"])
	assert.Equal(t, true, vaultRead(t, rootOf(ns, "prov")+"/config/crl")["auto_rebuild"])
	assert.Equal(t, true, vaultRead(t, issuingOf(ns, "prov")+"/config/auto-tidy")["enabled"])

	// A leaf verifies against the published root through the issuing CA.
	leaf, chain := signLeaf(t, issuingOf(ns, "prov")+"/sign/server", "a.example.com")
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
	oldLeaf, oldChain := signLeaf(t, issuingOf(ns, "rot")+"/sign/server", "old.example.com")

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

	newLeaf, newChain := signLeaf(t, issuingOf(ns, "rot")+"/sign/server", "new.example.com")
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
	require.NotNil(t, vaultRead(t, issuingOf(ns, "roles")+"/roles/extra"))

	update(t, ns, "roles", func(ca *v1alpha1.CertificateAuthority) {
		ca.Spec.Roles = ca.Spec.Roles[:1]
		ca.Spec.Roles[0].MaxTTL = "2h"
		ca.Spec.Roles[0].AllowedDomains = []string{"example.org"}
	})
	ca := waitReady(t, ns, "roles", metav1.ConditionTrue, "Provisioned")
	require.True(t, assertEventually(30*time.Second, func() bool { return vaultRead(t, issuingOf(ns, "roles")+"/roles/extra") == nil }), "removed role still in Vault")
	role := vaultRead(t, issuingOf(ns, "roles")+"/roles/server")
	assert.Equal(t, json.Number("7200"), role["max_ttl"])
	assert.Equal(t, []any{"example.org"}, role["allowed_domains"])
	assert.Len(t, ca.Status.Roles, 1)
	hasEvent(t, ns, "roles", "Normal RoleDeleted")
}

func TestSameClusterIDInTwoNamespaces(t *testing.T) {
	startOperator(t, opToken)
	nsA, nsB := namespace(t), namespace(t)
	create(t, newCA(nsA, "first", "shared"))
	create(t, newCA(nsB, "second", "shared", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }))
	first := waitReady(t, nsA, "first", metav1.ConditionTrue, "Provisioned")
	second := waitReady(t, nsB, "second", metav1.ConditionTrue, "Provisioned")
	assert.NotEqual(t, first.Status.Root.FingerprintSHA256, second.Status.Root.FingerprintSHA256, "each namespace has its own root")
	assert.NotEqual(t, first.Status.RootMount, second.Status.RootMount)
	leaf, chain := signLeaf(t, issuingOf(nsA, "shared")+"/sign/server", "a.example.com")

	// Deleting one (Delete) leaves the other's mounts, role and certificates intact.
	require.NoError(t, client.ClusterpkiV1alpha1().CertificateAuthorities(nsB).Delete(context.Background(), "second", metav1.DeleteOptions{}))
	gone(t, nsB, "second")
	m := mounts(t)
	assert.NotContains(t, m, rootOf(nsB, "shared"))
	assert.NotContains(t, m, issuingOf(nsB, "shared"))
	assert.Contains(t, m, rootOf(nsA, "shared"))
	assert.Contains(t, m, issuingOf(nsA, "shared"))
	after := waitReady(t, nsA, "first", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, first.Status.Root.FingerprintSHA256, after.Status.Root.FingerprintSHA256)
	verifyWithRoot(t, nsA, after, leaf, chain)
	newLeaf, newChain := signLeaf(t, issuingOf(nsA, "shared")+"/sign/server", "b.example.com")
	verifyWithRoot(t, nsA, after, newLeaf, newChain)
}

func TestTwoCAsOfOneNamespaceCannotShareAClusterID(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "first", "same"))
	first := waitReady(t, ns, "first", metav1.ConditionTrue, "Provisioned")
	create(t, newCA(ns, "second", "same"))
	second := waitReady(t, ns, "second", metav1.ConditionFalse, "MountConflict")
	assert.Contains(t, conditionMessage(second), ns+"/first")
	assert.Nil(t, second.Status.Root, "never handed another object's CA")
	hasEvent(t, ns, "second", "Warning MountConflict")
	assert.Equal(t, first.Status.Root.FingerprintSHA256, waitReady(t, ns, "first", metav1.ConditionTrue, "Provisioned").Status.Root.FingerprintSHA256)
}

func TestUnmarkedMountIsNeverTakenOver(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	require.NoError(t, rootVault.Sys().Mount(issuingOf(ns, "handmade"), &vaultapi.MountInput{Type: "pki", Description: "made by hand"}))
	_, err := rootVault.Logical().Write(issuingOf(ns, "handmade")+"/roles/web", map[string]any{"allow_any_name": true})
	require.NoError(t, err)
	create(t, newCA(ns, "hand", "handmade", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete }))
	ca := waitReady(t, ns, "hand", metav1.ConditionFalse, "MountConflict")
	assert.Contains(t, conditionMessage(ca), "not marked for clusterpki")
	assert.Contains(t, conditionMessage(ca), "deploy/vault/README.md")
	assert.NotContains(t, conditionMessage(ca), env.VaultAddr, "no Vault address in status")
	time.Sleep(4 * time.Second) // a resync or two
	assert.Equal(t, "made by hand", mounts(t)[issuingOf(ns, "handmade")], "a refused mount is left alone")
	assert.NotNil(t, vaultRead(t, issuingOf(ns, "handmade")+"/roles/web"), "its roles are left alone")

	// Deleting the object (Delete) does not unmount what it never owned.
	require.NoError(t, client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(context.Background(), "hand", metav1.DeleteOptions{}))
	gone(t, ns, "hand")
	assert.Equal(t, "made by hand", mounts(t)[issuingOf(ns, "handmade")])
}

func TestRetainedMountsReattach(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "again", "again"))
	before := waitReady(t, ns, "again", metav1.ConditionTrue, "Provisioned")
	require.NoError(t, client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Delete(context.Background(), "again", metav1.DeleteOptions{}))
	gone(t, ns, "again")

	create(t, newCA(ns, "again", "again"))
	after := waitReady(t, ns, "again", metav1.ConditionTrue, "Provisioned")
	assert.NotEqual(t, before.UID, after.UID)
	assert.Equal(t, before.Status.Root.FingerprintSHA256, after.Status.Root.FingerprintSHA256, "same root")
	hasEvent(t, ns, "again", "Normal MountReattached")
	assert.Equal(t, "clusterpki:certificateauthority="+ns+"/again uid="+string(after.UID), mounts(t)[rootOf(ns, "again")],
		"the mount now records the new object")
}

func TestRootAtAnOldPathIsNeverReplaced(t *testing.T) {
	ns := namespace(t)
	// A CA provisioned before mounts moved under the prefix: its status names the old mount.
	create(t, newCA(ns, "legacy", "legacy"))
	obj := get(t, ns, "legacy")
	obj.Status = v1alpha1.CertificateAuthorityStatus{
		RootMount: "pki-legacy-root", IssuingMount: "pki-legacy",
		Root: &v1alpha1.CACertificateStatus{SerialNumber: "01", FingerprintSHA256: "ab12", NotBefore: metav1.Now(), NotAfter: metav1.Now()},
	}
	_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).UpdateStatus(context.Background(), obj, metav1.UpdateOptions{})
	require.NoError(t, err)

	startOperator(t, opToken)
	ca := waitReady(t, ns, "legacy", metav1.ConditionFalse, "MigrationRequired")
	assert.Contains(t, conditionMessage(ca), "pki-legacy-root")
	assert.Contains(t, conditionMessage(ca), "deploy/vault/README.md")
	hasEvent(t, ns, "legacy", "Warning MigrationRequired")
	assert.NotContains(t, mounts(t), rootOf(ns, "legacy"), "no new root is made")
}

func TestOutOfBandDeletionIsRepaired(t *testing.T) {
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, "drift", "drift"))
	before := waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")

	// A role and the whole issuing mount deleted behind our back come back on a resync.
	_, err := rootVault.Logical().Delete(issuingOf(ns, "drift") + "/roles/server")
	require.NoError(t, err)
	require.NoError(t, rootVault.Sys().Unmount(issuingOf(ns, "drift")))
	require.True(t, assertEventually(60*time.Second, func() bool {
		return vaultRead(t, issuingOf(ns, "drift")+"/roles/server") != nil
	}), "role not recreated")
	after := waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")
	require.True(t, assertEventually(30*time.Second, func() bool {
		after = get(t, ns, "drift")
		return after.Status.Issuing.IssuerID != before.Status.Issuing.IssuerID
	}))
	assert.Equal(t, before.Status.Root.FingerprintSHA256, after.Status.Root.FingerprintSHA256)

	// The root mount deleted: a new root, a Warning, and a new fingerprint in status and ConfigMap.
	require.NoError(t, rootVault.Sys().Unmount(rootOf(ns, "drift")))
	require.True(t, assertEventually(60*time.Second, func() bool {
		after = get(t, ns, "drift")
		return after.Status.Root != nil && after.Status.Root.FingerprintSHA256 != before.Status.Root.FingerprintSHA256
	}), "root not recreated")
	hasEvent(t, ns, "drift", "Warning RootReplaced")
	after = waitReady(t, ns, "drift", metav1.ConditionTrue, "Provisioned")
	leaf, chain := signLeaf(t, issuingOf(ns, "drift")+"/sign/server", "x.example.com")
	require.True(t, assertEventually(30*time.Second, func() bool {
		cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), "drift-ca", metav1.GetOptions{})
		return err == nil && len(parsePEM(t, cm.Data["ca.crt"])) == 1 &&
			contract.Fingerprint(parsePEM(t, cm.Data["ca.crt"])[0]) == after.Status.Root.FingerprintSHA256
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
	assert.Contains(t, m, rootOf(ns, "keep"), "Retain keeps the CA")
	assert.Contains(t, m, issuingOf(ns, "keep"))
	assert.NotContains(t, m, rootOf(ns, "drop"), "Delete unmounts the CA")
	assert.NotContains(t, m, issuingOf(ns, "drop"))
}

func TestRestartMidwayMakesNoDuplicateRoot(t *testing.T) {
	ns := namespace(t)
	op := startOperator(t, opToken)
	create(t, newCA(ns, "restart", "restart"))
	// Stop as soon as the root exists, before the rest is done.
	require.True(t, assertEventually(60*time.Second, func() bool {
		s, err := rootVault.Logical().List(rootOf(ns, "restart") + "/issuers")
		return err == nil && s != nil
	}))
	op.stop()
	startOperator(t, opToken)
	ca := waitReady(t, ns, "restart", metav1.ConditionTrue, "Provisioned")
	s, err := rootVault.Logical().List(rootOf(ns, "restart") + "/issuers")
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
	vaultHostPort := strings.TrimPrefix(strings.TrimPrefix(env.VaultAddr, "https://"), "http://")
	assert.NotContains(t, conditionMessage(ca), vaultHostPort, "no Vault address in status")
	for _, e := range events(t, ns, "outage") {
		assert.NotContains(t, e, vaultHostPort, "no Vault address in events")
	}

	require.NoError(t, env.StartVault(context.Background()))
	waitReady(t, ns, "outage", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, json.Number("10800"), vaultRead(t, issuingOf(ns, "outage")+"/roles/server")["max_ttl"])
}

func TestShortLivedTokenIsRenewed(t *testing.T) {
	// A token living 6 seconds: the client renews it in the background, so work done long
	// after its first TTL still succeeds.
	short, err := env.PolicyToken(t.Context(), "ca-operator", "6s")
	require.NoError(t, err)
	startOperator(t, short)
	ns := namespace(t)
	create(t, newCA(ns, "token", "token"))
	waitReady(t, ns, "token", metav1.ConditionTrue, "Provisioned")
	time.Sleep(10 * time.Second)
	update(t, ns, "token", func(ca *v1alpha1.CertificateAuthority) { ca.Spec.Roles[0].MaxTTL = "5h" })
	waitReady(t, ns, "token", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, json.Number("18000"), vaultRead(t, issuingOf(ns, "token")+"/roles/server")["max_ttl"])
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
