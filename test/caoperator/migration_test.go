package caoperator

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// migrationBlock returns the shell block of deploy/vault/README.md between its migration
// markers, without the code fence: the procedure exactly as the README gives it.
func migrationBlock(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(env.RepoRoot, "deploy", "vault", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- migration:begin -->")
	require.True(t, ok, "README has no migration:begin marker")
	block, _, ok := strings.Cut(rest, "<!-- migration:end -->")
	require.True(t, ok, "README has no migration:end marker")
	block = strings.TrimSpace(block)
	block = strings.TrimPrefix(block, "```sh")
	block = strings.TrimSuffix(block, "```")
	return block
}

func TestMigrationProcedure(t *testing.T) {
	ns := namespace(t)
	clusterID := "legacy"
	oldRoot, oldIssuing := "pki-"+ns+"-"+clusterID+"-root", "pki-"+ns+"-"+clusterID

	// A CA pair made by hand, in the layout clusterpki used before mounts moved under the prefix.
	for _, m := range []string{oldRoot, oldIssuing} {
		require.NoError(t, rootVault.Sys().Mount(m, &vaultapi.MountInput{Type: "pki", Description: "made by hand",
			Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"}}))
	}
	root, err := rootVault.Logical().Write(oldRoot+"/root/generate/internal", map[string]any{"common_name": "legacy root", "ttl": "87600h", "key_type": "ec"})
	require.NoError(t, err)
	rootCert := parsePEM(t, root.Data["certificate"].(string))[0]
	csr, err := rootVault.Logical().Write(oldIssuing+"/intermediate/generate/internal", map[string]any{"common_name": "legacy issuing", "key_type": "ec"})
	require.NoError(t, err)
	signed, err := rootVault.Logical().Write(oldRoot+"/root/sign-intermediate", map[string]any{"csr": csr.Data["csr"], "ttl": "8760h", "format": "pem"})
	require.NoError(t, err)
	_, err = rootVault.Logical().Write(oldIssuing+"/intermediate/set-signed", map[string]any{
		"certificate": signed.Data["certificate"].(string) + "\n" + root.Data["certificate"].(string)})
	require.NoError(t, err)
	_, err = rootVault.Logical().Write(oldIssuing+"/roles/server", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "any"})
	require.NoError(t, err)
	oldLeaf, oldChain := signLeaf(t, oldIssuing+"/sign/server", "old.example.com")

	// The procedure, run as written, by an administrator (the root token) with the vault CLI.
	vaultBin, err := testenv.Binary("vault")
	require.NoError(t, err)
	binDir := t.TempDir()
	require.NoError(t, os.Symlink(vaultBin, filepath.Join(binDir, "vault")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", migrationBlock(t))
	cmd.Env = append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VAULT_ADDR="+env.VaultAddr, "VAULT_TOKEN="+env.VaultRootToken,
		"NAMESPACE="+ns, "CA_NAME=moved", "CLUSTER_ID="+clusterID, "PREFIX=clusterpki",
		"OLD_ROOT="+oldRoot, "OLD_ISSUING="+oldIssuing)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "migration procedure failed:\n%s", out)

	startOperator(t, opToken)
	create(t, newCA(ns, "moved", clusterID))
	ca := waitReady(t, ns, "moved", metav1.ConditionTrue, "Provisioned")
	assert.Equal(t, rootOf(ns, clusterID), ca.Status.RootMount)
	assert.Equal(t, contract.Fingerprint(rootCert), ca.Status.Root.FingerprintSHA256, "the same root")
	hasEvent(t, ns, "moved", "Normal MountReattached")
	m := mounts(t)
	assert.NotContains(t, m, oldRoot)
	assert.Equal(t, "clusterpki:certificateauthority="+ns+"/moved uid="+string(ca.UID), m[issuingOf(ns, clusterID)])
	// Certificates issued before the move still verify against the published root, and new
	// ones are issued from the moved issuing CA.
	verifyWithRoot(t, ns, ca, oldLeaf, oldChain)
	newLeaf, newChain := signLeaf(t, issuingOf(ns, clusterID)+"/sign/server", "new.example.com")
	verifyWithRoot(t, ns, ca, newLeaf, newChain)
	assert.Equal(t, oldLeaf.AuthorityKeyId, newLeaf.AuthorityKeyId, "the issuing CA moved with its mount")
}
