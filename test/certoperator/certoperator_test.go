package certoperator

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/certoperator"
)

func TestCANotFoundOrNotReadyThenReady(t *testing.T) {
	ns := newNamespace(t, "ca-wait")
	ca := setupVaultCA(t, ns, "wait")
	op := startOperator(t, ns)

	createCertificate(t, certificate(ns, "web"))
	cond := waitReady(t, ns, "web", metav1.ConditionFalse, "CANotFound")
	assert.Equal(t, `CertificateAuthority "ca" does not exist in namespace "ca-wait"`, cond.Message)

	obj := createCA(t, ns, "ca", ca, false)
	waitReady(t, ns, "web", metav1.ConditionFalse, "CANotReady")
	require.Eventually(t, func() bool {
		return strings.Contains(readyCondition(t, ns, "web").Message, "(Provisioning: creating mounts)")
	}, 30*time.Second, 100*time.Millisecond, "the message carries the CA's own reason")
	assert.Nil(t, getSecret(t, ns, "web-tls"))
	assert.Zero(t, op.vault.signs.Load(), "no Vault call while the CA is not Ready")

	setCAStatus(t, obj, ca, true)
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	assert.NotNil(t, getSecret(t, ns, "web-tls"))
	assert.Equal(t, int64(1), op.vault.signs.Load())
}

func TestIssuance(t *testing.T) {
	ns, ca := newTenant(t, "issue", "issue")
	startOperator(t, ns)

	createCertificate(t, certificate(ns, "web", func(c *v1alpha1.Certificate) {
		c.Spec.AltNames = []string{"web.example.com", "www.example.com"}
		c.Spec.IPSANs = []string{"10.0.0.7", "fd00::7"}
		c.Spec.URISANs = []string{"spiffe://cluster.local/ns/issue/sa/web"}
		c.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "hi"}}
	}))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	start := time.Now()

	s := getSecret(t, ns, "web-tls")
	require.NotNil(t, s)
	assert.Equal(t, corev1.SecretTypeTLS, s.Type)
	assert.Equal(t, "clusterpki", s.Labels[v1alpha1.LabelManagedBy])
	assert.Equal(t, "web", s.Labels[v1alpha1.LabelCertificate])
	assert.Equal(t, "issue", s.Labels[v1alpha1.LabelClusterID])
	assert.Equal(t, "a", s.Labels["team"])
	assert.Equal(t, "hi", s.Annotations["note"])
	require.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, "Certificate", s.OwnerReferences[0].Kind)

	chain := parseChain(t, s.Data[corev1.TLSCertKey])
	require.Len(t, chain, 2, "tls.crt holds the leaf and the issuing CA")
	leaf := chain[0]
	assert.Equal(t, ca.Issuing.Raw, chain[1].Raw)
	caCrt := parseCert(t, string(s.Data["ca.crt"]))
	assert.Equal(t, contract.Fingerprint(ca.Root), contract.Fingerprint(caCrt), "ca.crt is the root")

	roots := x509.NewCertPool()
	roots.AddCert(caCrt)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.com"})
	require.NoError(t, err, "the certificate verifies against ca.crt")

	assert.Equal(t, "web.example.com", leaf.Subject.CommonName)
	assert.ElementsMatch(t, []string{"web.example.com", "www.example.com"}, leaf.DNSNames)
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	assert.ElementsMatch(t, []string{"10.0.0.7", "fd00::7"}, ips)
	require.Len(t, leaf.URIs, 1)
	assert.Equal(t, "spiffe://cluster.local/ns/issue/sa/web", leaf.URIs[0].String())
	assert.WithinDuration(t, start.Add(time.Hour), leaf.NotAfter, time.Minute, "ttl 1h")

	block, _ := pem.Decode(s.Data[corev1.TLSPrivateKeyKey])
	require.Equal(t, "PRIVATE KEY", block.Type)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.IsType(t, &ecdsa.PrivateKey{}, key, "ECDSA by default")
	assert.True(t, key.(*ecdsa.PrivateKey).PublicKey.Equal(leaf.PublicKey), "the key matches the certificate")
	assert.Equal(t, 256, key.(*ecdsa.PrivateKey).Curve.Params().BitSize)

	cert := getCertificate(t, ns, "web")
	assert.Equal(t, cert.Generation, cert.Status.ObservedGeneration)
	assert.Equal(t, leaf.NotAfter.Unix(), cert.Status.NotAfter.Unix())
	assert.Equal(t, leaf.NotBefore.Unix(), cert.Status.NotBefore.Unix())
	require.NotNil(t, cert.Status.RenewalTime)
	assert.WithinDuration(t, leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore)/3), cert.Status.RenewalTime.Time, 2*time.Minute)
	assert.Equal(t, strings.ToLower(formatSerial(leaf)), cert.Status.SerialNumber)
	waitEvent(t, ns, "web", "Normal Issued Issued certificate "+cert.Status.SerialNumber)

	if openssl, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), s.Data["ca.crt"], 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), s.Data[corev1.TLSCertKey], 0o600))
		out, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(dir, "ca.crt"),
			"-untrusted", filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.crt")).CombinedOutput()
		require.NoError(t, err, "openssl verify: %s", out)
	} else {
		t.Log("openssl not installed; skipped its verification")
	}
}

func TestKeyAlgorithms(t *testing.T) {
	ns, _ := newTenant(t, "keys", "keys")
	startOperator(t, ns)

	size := func(n int32) *int32 { return &n }
	tests := map[string]struct {
		key   v1alpha1.PrivateKeySpec
		check func(t *testing.T, key any)
	}{
		"ecdsa-384": {key: v1alpha1.PrivateKeySpec{Algorithm: "ECDSA", Size: size(384)}, check: func(t *testing.T, key any) {
			require.IsType(t, &ecdsa.PrivateKey{}, key)
			assert.Equal(t, 384, key.(*ecdsa.PrivateKey).Curve.Params().BitSize)
		}},
		"rsa-3072": {key: v1alpha1.PrivateKeySpec{Algorithm: "RSA", Size: size(3072)}, check: func(t *testing.T, key any) {
			require.IsType(t, &rsa.PrivateKey{}, key)
			assert.Equal(t, 3072, key.(*rsa.PrivateKey).N.BitLen())
		}},
		"ed25519": {key: v1alpha1.PrivateKeySpec{Algorithm: "Ed25519"}, check: func(t *testing.T, key any) {
			require.IsType(t, ed25519.PrivateKey{}, key)
		}},
	}
	for name, tc := range tests {
		createCertificate(t, certificate(ns, name, func(c *v1alpha1.Certificate) { c.Spec.PrivateKey = tc.key }))
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			waitReady(t, ns, name, metav1.ConditionTrue, "Issued")
			s := getSecret(t, ns, name+"-tls")
			block, _ := pem.Decode(s.Data[corev1.TLSPrivateKeyKey])
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			require.NoError(t, err)
			tc.check(t, key)
		})
	}
}

func TestRenewalWithShortTTL(t *testing.T) {
	t.Parallel() // a minute of waiting: run alongside the other long tests
	ns, _ := newTenant(t, "renew", "renew")
	op := startOperator(t, ns)

	// The shortest renewal interval the CRD admits: ttl 10m, renewBefore 90% of it.
	createCertificate(t, certificate(ns, "short", func(c *v1alpha1.Certificate) {
		c.Spec.TTL = "10m"
		c.Spec.RenewBefore = "9m"
	}))
	waitReady(t, ns, "short", metav1.ConditionTrue, "Issued")
	first := leafOf(t, getSecret(t, ns, "short-tls"))
	firstIssued := getCertificate(t, ns, "short").Status.LastIssuanceTime
	require.NotNil(t, firstIssued, "status records the issuance")
	// Vault back-dates notBefore by 30s: the lifetime is 10m30s, renewal due 9m before notAfter,
	// which the jitter moves a few seconds before the floor of a minute after the issuance.
	assert.WithinDuration(t, first.NotBefore.Add(10*time.Minute+30*time.Second), first.NotAfter, 2*time.Second)

	second := waitNewSerial(t, ns, "short", "short-tls", first.SerialNumber.String())
	secondIssued := getCertificate(t, ns, "short").Status.LastIssuanceTime
	require.NotNil(t, secondIssued)
	assert.GreaterOrEqual(t, secondIssued.Sub(firstIssued.Time), certoperator.ReissueFloor, "renewed no sooner than the floor after the last issuance")
	assert.True(t, secondIssued.Time.Before(first.NotAfter), "renewed before expiry")
	assert.True(t, second.NotAfter.After(first.NotAfter))
	waitEvent(t, ns, "short", "Normal Renewed")
	assert.Equal(t, 1.0, op.metric(t, "clusterpki_certificate_issuances_total", map[string]string{"kind": "renewed"}))
	assert.Zero(t, op.metric(t, "clusterpki_certificate_reissues_deferred_total", nil), "a renewal due before the floor is scheduled at it, not deferred")
	assert.Empty(t, warnings(t, ns, "short"))
}

func TestReissueTriggers(t *testing.T) {
	ns, _ := newTenant(t, "triggers", "triggers")
	startOperator(t, ns)
	createCertificate(t, certificate(ns, "web"))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	serial := leafOf(t, getSecret(t, ns, "web-tls")).SerialNumber.String()

	// The steps run in order on one Certificate, each starting from the previous one's result;
	// a changed spec and a renew request re-issue at once, whatever the floor between issuances.
	steps := []struct {
		name   string
		act    func(t *testing.T)
		verify func(t *testing.T, leaf *x509.Certificate)
	}{
		{"a new SAN in the spec", func(t *testing.T) {
			updateCertificate(t, ns, "web", func(c *v1alpha1.Certificate) {
				c.Spec.AltNames = append(c.Spec.AltNames, "api.example.com")
			})
		}, func(t *testing.T, leaf *x509.Certificate) {
			assert.Contains(t, leaf.DNSNames, "api.example.com")
		}},
		{"the renew annotation", func(t *testing.T) {
			updateCertificate(t, ns, "web", func(c *v1alpha1.Certificate) {
				c.Annotations = map[string]string{v1alpha1.AnnotationRenew: time.Now().Format(time.RFC3339Nano)}
			})
		}, func(t *testing.T, leaf *x509.Certificate) {
			want := getCertificate(t, ns, "web").Annotations[v1alpha1.AnnotationRenew]
			assert.Equal(t, want, getSecret(t, ns, "web-tls").Annotations["clusterpki.dev/renew-request"])
		}},
		{"another SAN right after", func(t *testing.T) {
			updateCertificate(t, ns, "web", func(c *v1alpha1.Certificate) {
				c.Spec.AltNames = append(c.Spec.AltNames, "www.example.com")
			})
		}, func(t *testing.T, leaf *x509.Certificate) {
			assert.Contains(t, leaf.DNSNames, "www.example.com")
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.act(t)
			leaf := waitNewSerial(t, ns, "web", "web-tls", serial)
			serial = leaf.SerialNumber.String()
			if step.verify != nil {
				step.verify(t, leaf)
			}
		})
	}
}

// TestDamagedSecretWaitsForTheFloor damages the Secrets of three Certificates just issued: each
// is re-issued, but no sooner than the floor after its last issuance, and meanwhile it is not
// Ready and a Warning says until when.
func TestDamagedSecretWaitsForTheFloor(t *testing.T) {
	t.Parallel() // a minute of waiting: run alongside the other long tests
	ns, _ := newTenant(t, "damaged", "damaged")
	op := startOperator(t, ns)

	damage := map[string]func(t *testing.T){
		"deleted": func(t *testing.T) {
			require.NoError(t, env.KubeClient.CoreV1().Secrets(ns).Delete(ctx(t), "deleted-tls", metav1.DeleteOptions{}))
		},
		"wrongkey": func(t *testing.T) {
			s := getSecret(t, ns, "wrongkey-tls")
			// A well-formed key that is not the certificate's: the pair no longer matches.
			s.Data[corev1.TLSPrivateKeyKey] = otherKey(t)
			_, err := env.KubeClient.CoreV1().Secrets(ns).Update(ctx(t), s, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
		"garbled": func(t *testing.T) {
			s := getSecret(t, ns, "garbled-tls")
			s.Data[corev1.TLSCertKey] = []byte("garbage")
			_, err := env.KubeClient.CoreV1().Secrets(ns).Update(ctx(t), s, metav1.UpdateOptions{})
			require.NoError(t, err)
		},
	}
	serials := map[string]string{}
	issued := map[string]time.Time{}
	for name := range damage {
		createCertificate(t, certificate(ns, name))
	}
	for name := range damage {
		waitReady(t, ns, name, metav1.ConditionTrue, "Issued")
		serials[name] = leafOf(t, getSecret(t, ns, name+"-tls")).SerialNumber.String()
		issued[name] = getCertificate(t, ns, name).Status.LastIssuanceTime.Time
	}
	for name, act := range damage {
		act(t)
		cond := waitReady(t, ns, name, metav1.ConditionFalse, "ReissueDeferred")
		assert.Contains(t, cond.Message, "waits until", name)
		waitEvent(t, ns, name, "Warning ReissueDeferred")
	}
	for name := range damage {
		leaf := waitNewSerial(t, ns, name, name+"-tls", serials[name])
		c := getCertificate(t, ns, name)
		assert.GreaterOrEqual(t, c.Status.LastIssuanceTime.Sub(issued[name]), certoperator.ReissueFloor, "%s re-issued before the floor", name)
		assert.Equal(t, formatSerial(leaf), c.Status.SerialNumber)
	}
	assert.Equal(t, 6.0, op.metric(t, "clusterpki_vault_requests_total", map[string]string{"operation": "sign"}),
		"one signature each to issue, one each to repair")
}

// otherKey returns a new PKCS#8 PEM private key.
func otherKey(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(ecdsaCurve(), randReader())
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestNonTriggersRestartAndResync(t *testing.T) {
	ns, _ := newTenant(t, "steady", "steady")
	op := startOperator(t, ns)
	for _, name := range []string{"a", "b", "c"} {
		createCertificate(t, certificate(ns, name))
	}
	serials := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		waitReady(t, ns, name, metav1.ConditionTrue, "Issued")
		serials[name] = leafOf(t, getSecret(t, ns, name+"-tls")).SerialNumber.String()
	}

	// Changes that are not issuance-relevant: a template label and a non-issuance spec field.
	updateCertificate(t, ns, "a", func(c *v1alpha1.Certificate) {
		c.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Labels: map[string]string{"tier": "web"}}
	})
	require.Eventually(t, func() bool { return getSecret(t, ns, "a-tls").Labels["tier"] == "web" }, 30*time.Second, 100*time.Millisecond)
	updateCertificate(t, ns, "b", func(c *v1alpha1.Certificate) { c.Spec.RenewBefore = "10m" })
	for _, name := range []string{"a", "b"} {
		require.Eventually(t, func() bool {
			c := getCertificate(t, ns, name)
			return c.Status.ObservedGeneration == c.Generation
		}, 30*time.Second, 100*time.Millisecond)
	}
	assert.Zero(t, op.vault.signs.Load()-3, "changes that are not issuance-relevant sign nothing")
	op.stop()

	restarted := startOperator(t, ns)
	// Every Certificate is synced once after the start: its ready gauge appears.
	require.Eventually(t, func() bool {
		for _, name := range []string{"a", "b", "c"} {
			if restarted.metric(t, "clusterpki_certificate_ready", map[string]string{"namespace": ns, "name": name}) != 1 {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond)
	for name, serial := range serials {
		assert.Equal(t, serial, leafOf(t, getSecret(t, ns, name+"-tls")).SerialNumber.String(), "%s re-issued", name)
	}
	assert.Zero(t, restarted.vault.signs.Load(), "a restart signs nothing")
	assert.Zero(t, restarted.metric(t, "clusterpki_certificate_issuances_total", nil))
	assert.Zero(t, restarted.metric(t, "clusterpki_certificate_api_writes_total", nil), "a restart writes nothing")
}

func TestForeignSecretUntouched(t *testing.T) {
	ns, _ := newTenant(t, "foreign", "foreign")
	op := startOperator(t, ns)

	foreign, err := env.KubeClient.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"},
		StringData: map[string]string{"password": "hunter2"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	createCertificate(t, certificate(ns, "web", func(c *v1alpha1.Certificate) { c.Spec.SecretName = "taken" }))
	cond := waitReady(t, ns, "web", metav1.ConditionFalse, "SecretConflict")
	assert.Equal(t, `Secret "taken" exists and is not managed by this Certificate; it is left untouched`, cond.Message)
	waitEvent(t, ns, "web", "Warning SecretConflict")
	after := getSecret(t, ns, "taken")
	assert.Equal(t, foreign.ResourceVersion, after.ResourceVersion, "the foreign Secret is never written")
	assert.Equal(t, "hunter2", string(after.Data["password"]))
	// The cache holds only our Secrets, so a new Certificate signs before its create finds
	// this one; that certificate is dropped, and the status now makes every later look read
	// the Secret first.
	assert.LessOrEqual(t, op.vault.signs.Load(), int64(1), "at most the one certificate signed before the create found the Secret")
}

func TestDisallowedName(t *testing.T) {
	ns, _ := newTenant(t, "refused", "refused")
	op := startOperator(t, ns)

	createCertificate(t, certificate(ns, "evil", func(c *v1alpha1.Certificate) {
		c.Spec.CommonName = "evil.org"
		c.Spec.AltNames = []string{"evil.org"}
	}))
	cond := waitReady(t, ns, "evil", metav1.ConditionFalse, "IssuanceFailed")
	assert.Contains(t, cond.Message, "Vault refused to sign")
	assert.Contains(t, cond.Message, "evil.org")
	cert := getCertificate(t, ns, "evil")
	assert.GreaterOrEqual(t, cert.Status.FailedIssuanceAttempts, int32(1))
	assert.NotNil(t, cert.Status.LastFailureTime)
	waitEvent(t, ns, "evil", "Warning IssuanceFailed Vault refused to sign")
	assert.Nil(t, getSecret(t, ns, "evil-tls"))

	// Retries back off (5s, then 10s, ...): the second attempt comes no sooner than 5s after the first.
	first := cert.Status.LastFailureTime.Time
	var second *v1alpha1.Certificate
	require.Eventually(t, func() bool {
		second = getCertificate(t, ns, "evil")
		return second.Status.FailedIssuanceAttempts >= 2
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, int32(2), second.Status.FailedIssuanceAttempts, "no hot loop")
	assert.GreaterOrEqual(t, second.Status.LastFailureTime.Sub(first), 4*time.Second, "retried after a backoff")
	assert.LessOrEqual(t, op.vault.signs.Load(), int64(2), "one Vault call per attempt")

	// Fixing the spec issues at once, without waiting out the backoff.
	updateCertificate(t, ns, "evil", func(c *v1alpha1.Certificate) {
		c.Spec.CommonName = "good.example.com"
		c.Spec.AltNames = []string{"good.example.com"}
	})
	waitReady(t, ns, "evil", metav1.ConditionTrue, "Issued")
	assert.Zero(t, getCertificate(t, ns, "evil").Status.FailedIssuanceAttempts)
}

func TestRevocationOnDelete(t *testing.T) {
	ns, ca := newTenant(t, "revoke", "revoke")
	startOperator(t, ns)

	createCertificate(t, certificate(ns, "web", func(c *v1alpha1.Certificate) { c.Spec.RevocationPolicy = v1alpha1.RevocationPolicyOnDelete }))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	assert.Contains(t, getCertificate(t, ns, "web").Finalizers, "clusterpki.dev/revoke")
	serial := formatSerial(leafOf(t, getSecret(t, ns, "web-tls")))

	require.NoError(t, client.ClusterpkiV1alpha1().Certificates(ns).Delete(ctx(t), "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx(t), "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond, "the finalizer was not removed")
	assert.Contains(t, revokedSerials(t, ca.IssuingMount), serial)

	// Without a revocation policy there is no finalizer.
	createCertificate(t, certificate(ns, "plain"))
	waitReady(t, ns, "plain", metav1.ConditionTrue, "Issued")
	assert.Empty(t, getCertificate(t, ns, "plain").Finalizers)
}

func TestRevocationOnReissue(t *testing.T) {
	ns, ca := newTenant(t, "revoke-reissue", "revreissue")
	startOperator(t, ns)

	createCertificate(t, certificate(ns, "web", func(c *v1alpha1.Certificate) { c.Spec.RevocationPolicy = v1alpha1.RevocationPolicyOnReissue }))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
	old := leafOf(t, getSecret(t, ns, "web-tls"))
	updateCertificate(t, ns, "web", func(c *v1alpha1.Certificate) {
		c.Annotations = map[string]string{v1alpha1.AnnotationRenew: "now"}
	})
	waitNewSerial(t, ns, "web", "web-tls", old.SerialNumber.String())
	require.Eventually(t, func() bool {
		return contains(revokedSerials(t, ca.IssuingMount), formatSerial(old))
	}, 30*time.Second, 200*time.Millisecond)
	waitEvent(t, ns, "web", "Normal Revoked Revoked replaced certificate "+formatSerial(old))
}

// revokedSerials lists the serials Vault has revoked on mount.
func revokedSerials(t *testing.T, mount string) []string {
	t.Helper()
	resp, err := rootVault(t).Logical().ListWithContext(ctx(t), mount+"/certs/revoked")
	require.NoError(t, err)
	if resp == nil {
		return nil
	}
	var out []string
	for _, k := range resp.Data["keys"].([]any) {
		out = append(out, strings.ReplaceAll(k.(string), "-", ":"))
	}
	return out
}

func TestOperatorTokenCannotManageCAs(t *testing.T) {
	ca := setupVaultCA(t, "leastpriv", "leastpriv")
	v := operatorVault(t)
	c := ctx(t)

	forbidden := map[string]func() error{
		"enable a mount": func() error {
			return v.Sys().MountWithContext(c, "pki-attacker", &vaultapi.MountInput{Type: "pki"})
		},
		"generate a root": func() error {
			_, err := v.Logical().WriteWithContext(c, ca.RootMount+"/root/generate/internal", map[string]any{"common_name": "x"})
			return err
		},
		"sign an intermediate with the root": func() error {
			_, err := v.Logical().WriteWithContext(c, ca.RootMount+"/root/sign-intermediate", map[string]any{"csr": "x"})
			return err
		},
		"change a role": func() error {
			_, err := v.Logical().WriteWithContext(c, ca.IssuingMount+"/roles/server", map[string]any{"allow_any_name": true})
			return err
		},
		"sign verbatim": func() error {
			_, err := v.Logical().WriteWithContext(c, ca.IssuingMount+"/sign-verbatim/server", map[string]any{"csr": "x"})
			return err
		},
		"read the CA configuration": func() error {
			_, err := v.Logical().ReadWithContext(c, ca.IssuingMount+"/config/urls")
			return err
		},
	}
	for name, call := range forbidden {
		t.Run(name, func(t *testing.T) {
			err := call()
			var resp *vaultapi.ResponseError
			require.ErrorAs(t, err, &resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		})
	}

	t.Run("sign with a role", func(t *testing.T) {
		_, err := v.Logical().WriteWithContext(c, ca.IssuingMount+"/sign/server", map[string]any{"csr": "not a csr"})
		var resp *vaultapi.ResponseError
		require.ErrorAs(t, err, &resp)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "allowed, and refused only for the bad CSR")
	})
}

func TestVaultDownThenBack(t *testing.T) {
	ns, _ := newTenant(t, "vault-down", "down")
	op := startOperator(t, ns)

	env.StopVault()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.StartVault(ctx(t))
		}
	})
	createCertificate(t, certificate(ns, "web"))
	require.Eventually(t, func() bool {
		return op.metric(t, "clusterpki_certificate_sync_errors_total", map[string]string{"reason": "VaultUnavailable"}) >= 2
	}, 30*time.Second, 100*time.Millisecond, "the operator retries while Vault is down")
	cond := readyCondition(t, ns, "web")
	if cond != nil {
		assert.NotEqual(t, "IssuanceFailed", cond.Reason, "an outage is not a refusal")
	}

	require.NoError(t, env.StartVault(ctx(t)))
	restarted = true
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")
}
