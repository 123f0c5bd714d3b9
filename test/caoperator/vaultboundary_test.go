package caoperator

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// The tests in this file try to cross the Vault boundary the way a stolen operator token
// would, holding exactly the shipped policy, and assert that Vault refuses each attempt.

// foreignEngines mounts, once, what a shared Vault typically holds besides clusterpki: another
// team's PKI (pki-corp, with a role), an SSH CA and a transit key that can sign.
func foreignEngines(t *testing.T) {
	t.Helper()
	all, err := rootVault.Sys().ListMounts()
	require.NoError(t, err)
	if _, ok := all["pki-corp/"]; ok {
		return
	}
	require.NoError(t, rootVault.Sys().Mount("pki-corp", &vaultapi.MountInput{Type: "pki"}))
	_, err = rootVault.Logical().Write("pki-corp/root/generate/internal", map[string]any{"common_name": "corp root", "key_type": "ec"})
	require.NoError(t, err)
	_, err = rootVault.Logical().Write("pki-corp/roles/web", map[string]any{"allow_any_name": true, "key_type": "any"})
	require.NoError(t, err)
	require.NoError(t, rootVault.Sys().Mount("ssh", &vaultapi.MountInput{Type: "ssh"}))
	_, err = rootVault.Logical().Write("ssh/config/ca", map[string]any{"generate_signing_key": true})
	require.NoError(t, err)
	_, err = rootVault.Logical().Write("ssh/roles/admin", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"})
	require.NoError(t, err)
	require.NoError(t, rootVault.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}))
	_, err = rootVault.Logical().Write("transit/keys/signer", map[string]any{"type": "ecdsa-p256"})
	require.NoError(t, err)
}

// tokenClient returns a Vault client holding a fresh token with only the named shipped policy.
func tokenClient(t *testing.T, policyFile string) *vaultapi.Client {
	t.Helper()
	policy, err := os.ReadFile(filepath.Join(env.RepoRoot, "deploy", "vault", policyFile))
	require.NoError(t, err)
	name := "shipped-" + policyFile
	require.NoError(t, rootVault.Sys().PutPolicy(name, string(policy)))
	tok, err := env.PolicyToken(t.Context(), name, "1h")
	require.NoError(t, err)
	c, err := rootVault.Clone()
	require.NoError(t, err)
	c.SetToken(tok)
	return c
}

// attempt is one request a stolen token might make.
type attempt struct {
	path string
	data map[string]any
	// delete sends a DELETE instead of a write.
	delete bool
}

// assertRefused sends every attempt and asserts Vault answered 403 permission denied, the
// policy's refusal (not a 400 from the engine, which would mean the policy let it through).
func assertRefused(t *testing.T, c *vaultapi.Client, attempts map[string]attempt) {
	t.Helper()
	names := make([]string, 0, len(attempts))
	for name := range attempts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := attempts[name]
		data := a.data
		if data == nil {
			data = map[string]any{"common_name": "x.example.com", "csr": "x", "key_type": "ec"}
		}
		var err error
		if a.delete {
			_, err = c.Logical().Delete(a.path)
		} else {
			_, err = c.Logical().Write(a.path, data)
		}
		var re *vaultapi.ResponseError
		if assert.True(t, errors.As(err, &re), "%s (%s): want a refusal, got %v", name, a.path, err) {
			assert.Equal(t, 403, re.StatusCode, "%s (%s): %v", name, a.path, err)
			assert.Contains(t, re.Error(), "permission denied", "%s (%s)", name, a.path)
		}
	}
}

// readyCAWithForeignEngines provisions a CA called clusterID in a new namespace, beside the
// foreign engines, and returns its namespace and mounts.
func readyCAWithForeignEngines(t *testing.T, clusterID string) (string, pkipath.Mounts) {
	t.Helper()
	foreignEngines(t)
	startOperator(t, opToken)
	ns := namespace(t)
	create(t, newCA(ns, clusterID, clusterID))
	waitReady(t, ns, clusterID, metav1.ConditionTrue, "Provisioned")
	return ns, mountsOf(t, ns, clusterID)
}

func TestCertOperatorTokenReachesOnlyIssuingMountsBelowThePrefix(t *testing.T) {
	ns, own := readyCAWithForeignEngines(t, "bound")
	c := tokenClient(t, "cert-operator.hcl")

	// The control: what the cert-operator needs is allowed (Vault's own validation answers).
	_, err := c.Logical().Write(own.SignPath("server"), map[string]any{"csr": "not a csr"})
	var re *vaultapi.ResponseError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, 400, re.StatusCode, "the policy lets a sign through to the PKI engine: %v", err)

	assertRefused(t, c, map[string]attempt{
		"another team's PKI: sign":             {path: "pki-corp/sign/web"},
		"another team's PKI: issue":            {path: "pki-corp/issue/web"},
		"another team's PKI: revoke":           {path: "pki-corp/revoke", data: map[string]any{"serial_number": "01"}},
		"SSH user certificates":                {path: "ssh/sign/admin", data: map[string]any{"public_key": "ssh-ed25519 AAAA"}},
		"transit signing":                      {path: "transit/sign/signer", data: map[string]any{"input": "aGk="}},
		"revoke any lease":                     {path: "sys/revoke", data: map[string]any{"lease_id": "auth/token/create/x"}},
		"enable a mount":                       {path: "sys/mounts/clusterpki/" + ns + "/x/issuing", data: map[string]any{"type": "pki"}},
		"sign on its own CA's root mount":      {path: own.Root + "/sign/server"},
		"sign an intermediate with the root":   {path: own.Root + "/root/sign-intermediate"},
		"write a role":                         {path: own.Issuing + "/roles/server", data: map[string]any{"allow_any_name": true}},
		"issue (Vault makes the key)":          {path: own.Issuing + "/issue/server"},
		"sign verbatim":                        {path: own.Issuing + "/sign-verbatim/server"},
		"sign with an issuer reference":        {path: own.Issuing + "/issuer/default/sign/server"},
		"generate a root with exported key":    {path: own.Issuing + "/root/generate/exported"},
		"import a CA bundle":                   {path: own.Issuing + "/config/ca", data: map[string]any{"pem_bundle": "x"}},
		"revoke with a key":                    {path: own.Issuing + "/revoke-with-key"},
		"sign on a mount named like issuing":   {path: "clusterpki/" + ns + "/bound/issuing-x/sign/server"},
		"sign one level deeper than a mount":   {path: "clusterpki/x/" + ns + "/bound/issuing/sign/server"},
		"sign on a mount outside the prefix":   {path: "pki-" + ns + "/sign/server"},
		"sign on a prefix-lookalike mount":     {path: "clusterpki-x/" + ns + "/bound/issuing/sign/server"},
		"tune the issuing mount":               {path: "sys/mounts/" + own.Issuing + "/tune", data: map[string]any{"max_lease_ttl": "1s"}},
		"write the issuing mount's CRL config": {path: own.Issuing + "/config/crl", data: map[string]any{"disable": true}},
	})
}

func TestCAOperatorTokenReachesOnlyItsMountsAndNoKeyMaterial(t *testing.T) {
	ns, own := readyCAWithForeignEngines(t, "keys")
	c := tokenClient(t, "ca-operator.hcl")

	// The control: configuring its own mount is allowed (the deny rules are not blanket).
	_, err := c.Logical().Write(own.Issuing+"/config/crl", map[string]any{"auto_rebuild": true, "expiry": "72h"})
	require.NoError(t, err, "the ca-operator may configure its own mounts")

	attempts := map[string]attempt{
		"another team's PKI: write a role":   {path: "pki-corp/roles/web", data: map[string]any{"allow_any_name": true}},
		"another team's PKI: sign":           {path: "pki-corp/sign/web"},
		"another team's PKI: tune":           {path: "sys/mounts/pki-corp/tune", data: map[string]any{"description": "mine"}},
		"enable a mount outside the prefix":  {path: "sys/mounts/pki-evil", data: map[string]any{"type": "pki"}},
		"enable a non-PKI engine under it":   {path: "sys/mounts/clusterpki/" + ns + "/x/issuing", data: map[string]any{"type": "transit"}},
		"enable an SSH engine under it":      {path: "sys/mounts/clusterpki/" + ns + "/y/issuing", data: map[string]any{"type": "ssh"}},
		"SSH user certificates":              {path: "ssh/sign/admin", data: map[string]any{"public_key": "ssh-ed25519 AAAA"}},
		"transit signing":                    {path: "transit/sign/signer", data: map[string]any{"input": "aGk="}},
		"revoke any lease":                   {path: "sys/revoke", data: map[string]any{"lease_id": "auth/token/create/x"}},
		"write a policy":                     {path: "sys/policies/acl/mine", data: map[string]any{"policy": `path "*" {capabilities=["sudo"]}`}},
		"remount another team's PKI into it": {path: "sys/remount", data: map[string]any{"from": "pki-corp", "to": "clusterpki/" + ns + "/corp/root"}},
	}
	// Every endpoint of the Vault v1.21 PKI engine that exports or imports key material or
	// signs without a role's rules, in both of its own mounts.
	for _, mount := range []string{own.Root, own.Issuing} {
		for _, endpoint := range []string{
			"root/generate/exported", "issuers/generate/root/exported", "root/rotate/exported",
			"intermediate/generate/exported", "issuers/generate/intermediate/exported", "keys/generate/exported",
			"issue/server", "issuer/default/issue/server",
			"keys/import", "issuers/import/bundle", "config/ca",
			"sign-verbatim", "sign-verbatim/server", "issuer/default/sign-verbatim", "issuer/default/sign-verbatim/server",
			"root/sign-self-issued", "issuer/default/sign-self-issued", "issuer/default/sign-intermediate",
			"sign/server", "issuer/default/sign/server",
			"issuer/default/sign-revocation-list", "issuer/default/resign-crls", "config/acme",
		} {
			attempts[mount+": "+endpoint] = attempt{path: mount + "/" + endpoint}
		}
		// Revoking the default issuer (denied), or deleting every issuer and key of the mount at
		// once (a sudo path, never granted), would stop issuance in one call.
		attempts[mount+": revoke the default issuer"] = attempt{path: mount + "/issuer/default/revoke"}
		attempts[mount+": delete every issuer and key"] = attempt{path: mount + "/root", delete: true}
	}
	assertRefused(t, c, attempts)
}
