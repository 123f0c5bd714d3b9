package certoperator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
)

// TestNoReissueLoops runs the specs that made the cert-operator sign in a loop, each with its
// own operator (so the operator's own sign counter is the Certificate's), and counts Vault
// signatures over a measured floor (a minute): at most one each. Without the floor the
// tightest spec signs about twice a minute and the capped ones a dozen times.
func TestNoReissueLoops(t *testing.T) {
	t.Parallel() // a minute of waiting: run alongside the other long tests
	tests := map[string]struct {
		// roleMaxTTL overrides the role's max_ttl when set, so Vault caps the certificate's ttl.
		roleMaxTTL string
		spec       func(*v1alpha1.Certificate)
		// wantWarning: the Certificate ends with a ReissueDeferred Warning (else Ready).
		wantWarning bool
	}{
		"the tightest renewBeforePercentage the CRD admits": {
			spec: func(c *v1alpha1.Certificate) { c.Spec.TTL = "10m"; c.Spec.RenewBeforePercentage = ptr(int32(90)) },
		},
		"a ttl the role caps to 20s": {
			roleMaxTTL:  "20s",
			spec:        func(c *v1alpha1.Certificate) { c.Spec.TTL = "10m" },
			wantWarning: true,
		},
		"a capped ttl with OnReissue revocation": {
			roleMaxTTL: "20s",
			spec: func(c *v1alpha1.Certificate) {
				c.Spec.TTL = "10m"
				c.Spec.RevocationPolicy = v1alpha1.RevocationPolicyOnReissue
			},
			wantWarning: true,
		},
	}
	i := 0
	for name, tc := range tests {
		i++
		ns, clusterID := fmt.Sprintf("loop-%d", i), fmt.Sprintf("loop%d", i)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			newNamespace(t, ns)
			ca := setupVaultCA(t, ns, clusterID)
			if tc.roleMaxTTL != "" {
				role := map[string]any{}
				for k, v := range roleOptions {
					role[k] = v
				}
				role["max_ttl"] = tc.roleMaxTTL
				_, err := rootVault(t).Logical().WriteWithContext(ctx(t), ca.IssuingMount+"/roles/server", role)
				require.NoError(t, err)
			}
			createCA(t, ns, "ca", ca, true)
			op := startOperator(t, ns)
			createCertificate(t, certificate(ns, "loop", tc.spec))
			waitReady(t, ns, "loop", metav1.ConditionTrue, "Issued")

			signs := map[string]string{"operation": "sign"}
			revokes := map[string]string{"operation": "revoke"}
			signsBefore, revokesBefore := op.metric(t, "clusterpki_vault_requests_total", signs), op.metric(t, "clusterpki_vault_requests_total", revokes)
			time.Sleep(certoperator.ReissueFloor)
			signed := op.metric(t, "clusterpki_vault_requests_total", signs) - signsBefore
			revoked := op.metric(t, "clusterpki_vault_requests_total", revokes) - revokesBefore
			t.Logf("over %s: %v signature(s), %v revocation(s)", certoperator.ReissueFloor, signed, revoked)
			assert.LessOrEqual(t, signed, 1.0, "signatures over one floor")
			assert.LessOrEqual(t, revoked, 1.0, "revocations over one floor")

			if tc.wantWarning {
				waitEvent(t, ns, "loop", "Warning ReissueDeferred")
			} else {
				waitReady(t, ns, "loop", metav1.ConditionTrue, "Issued")
				assert.Empty(t, warnings(t, ns, "loop"))
			}
			// The floor delays, it does not stop: the next issuance comes.
			require.Eventually(t, func() bool {
				return op.metric(t, "clusterpki_vault_requests_total", signs) >= signsBefore+1
			}, certoperator.ReissueFloor, 200*time.Millisecond, "no issuance after the floor")
		})
	}
}

// TestDeletionDoesNotWaitForVault deletes Certificates that revoke on deletion while Vault is
// down: each goes within the finalizer timeout (at once with the skip annotation), and a
// Warning names the certificate left unrevoked.
func TestDeletionDoesNotWaitForVault(t *testing.T) {
	// Long enough that, on a loaded machine, the skip case is seen well before it.
	const timeout = 30 * time.Second
	ns, ca := newTenant(t, "no-hang", "nohang")
	op := startOperatorWith(t, ns, func(c *certoperator.Config) { c.FinalizerTimeout = timeout })
	serials := map[string]string{}
	for _, name := range []string{"web", "skip"} {
		createCertificate(t, certificate(ns, name, func(c *v1alpha1.Certificate) { c.Spec.RevocationPolicy = v1alpha1.RevocationPolicyOnDelete }))
	}
	for _, name := range []string{"web", "skip"} {
		waitReady(t, ns, name, metav1.ConditionTrue, "Issued")
		serials[name] = formatSerial(leafOf(t, getSecret(t, ns, name+"-tls")))
	}

	env.StopVault()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.StartVault(ctx(t))
		}
	})
	for _, name := range []string{"web", "skip"} {
		require.NoError(t, client.ClusterpkiV1alpha1().Certificates(ns).Delete(ctx(t), name, metav1.DeleteOptions{}))
	}
	// An admin gives up on the revocation of one of them at once.
	updateCertificate(t, ns, "skip", func(c *v1alpha1.Certificate) {
		c.Annotations = map[string]string{v1alpha1.AnnotationSkipRevocation: "true"}
	})
	deleted := getCertificate(t, ns, "web").DeletionTimestamp
	require.NotNil(t, deleted)
	for _, name := range []string{"skip", "web"} {
		require.Eventually(t, func() bool {
			_, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx(t), name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, timeout+15*time.Second, 200*time.Millisecond, "Certificate %s still there with Vault down", name)
	}
	assert.WithinDuration(t, deleted.Add(timeout), time.Now(), 10*time.Second, "web was let go at its deadline")

	assert.Contains(t, eventWith(t, ns, "web", "Warning RevocationAbandoned"), serials["web"], "the Warning names the certificate not revoked")
	assert.Contains(t, eventWith(t, ns, "skip", "Warning RevocationSkipped"), serials["skip"])
	assert.Equal(t, 1.0, op.metric(t, "clusterpki_certificate_revocations_abandoned_total", map[string]string{"reason": "timeout"}))
	assert.Equal(t, 1.0, op.metric(t, "clusterpki_certificate_revocations_abandoned_total", map[string]string{"reason": "skipped"}))

	require.NoError(t, env.StartVault(ctx(t)))
	restarted = true
	revoked := revokedSerials(t, ca.IssuingMount)
	for name, serial := range serials {
		assert.NotContains(t, revoked, serial, "%s was not revoked, as its Warning says", name)
	}
}

// warnings returns the Warning events of ns/name.
func warnings(t *testing.T, ns, name string) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, ns, name) {
		if strings.HasPrefix(e, "Warning ") {
			out = append(out, e)
		}
	}
	return out
}

// eventWith waits for an event of ns/name starting with prefix and returns it.
func eventWith(t *testing.T, ns, name, prefix string) string {
	t.Helper()
	waitEvent(t, ns, name, prefix)
	for _, e := range events(t, ns, name) {
		if strings.HasPrefix(e, prefix) {
			return e
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
