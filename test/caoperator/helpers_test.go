package caoperator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

var nsCounter atomic.Int32

// namespace creates a namespace unique to the test.
func namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("ca-%d", nsCounter.Add(1))
	_, err := env.KubeClient.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// newCA builds a CertificateAuthority with one server role; options change it.
func newCA(ns, name, clusterID string, opts ...func(*v1alpha1.CertificateAuthority)) *v1alpha1.CertificateAuthority {
	ca := &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: clusterID,
			Root:      v1alpha1.RootCASpec{CommonName: clusterID + " root", TTL: "87600h", KeyType: "ec"},
			Issuing:   v1alpha1.IssuingCASpec{TTL: "8760h", KeyType: "ec"},
			Roles: []v1alpha1.RoleSpec{{
				Name: "server", AllowedDomains: []string{"example.com"}, AllowSubdomains: true, MaxTTL: "720h",
			}},
			DeletionPolicy: v1alpha1.DeletionPolicyRetain,
		},
	}
	for _, o := range opts {
		o(ca)
	}
	return ca
}

// create creates a CA.
func create(t *testing.T, ca *v1alpha1.CertificateAuthority) {
	t.Helper()
	_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).Create(context.Background(), ca, metav1.CreateOptions{})
	require.NoError(t, err)
}

// get reads a CA.
func get(t *testing.T, ns, name string) *v1alpha1.CertificateAuthority {
	t.Helper()
	ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return ca
}

// update changes a CA, retrying on conflicts.
func update(t *testing.T, ns, name string, change func(*v1alpha1.CertificateAuthority)) {
	t.Helper()
	require.Eventually(t, func() bool {
		ca := get(t, ns, name)
		change(ca)
		_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Update(context.Background(), ca, metav1.UpdateOptions{})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
}

// waitCondition waits until the CA's Ready condition has the status and reason, for the
// current generation, and returns the CA.
func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.CertificateAuthority {
	t.Helper()
	var last *v1alpha1.CertificateAuthority
	ok := assertEventually(90*time.Second, func() bool {
		last = get(t, ns, name)
		c := conditions.Get(last.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == status && c.Reason == reason && last.Status.ObservedGeneration == last.Generation
	})
	if !ok {
		t.Fatalf("CA %s/%s never reached Ready=%s reason %s; status: %+v", ns, name, status, reason, last.Status)
	}
	return last
}

// assertEventually polls cond until it holds or the timeout passes.
func assertEventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return cond()
}

// vaultRead reads a Vault path with the root token.
func vaultRead(t *testing.T, path string) map[string]any {
	t.Helper()
	s, err := rootVault.Logical().Read(path)
	require.NoError(t, err, path)
	if s == nil {
		return nil
	}
	return s.Data
}

// mounts returns the enabled mounts by path (without the trailing slash).
func mounts(t *testing.T) map[string]string {
	t.Helper()
	all, err := rootVault.Sys().ListMounts()
	require.NoError(t, err)
	out := map[string]string{}
	for path, m := range all {
		out[strings.TrimSuffix(path, "/")] = m.Description
	}
	return out
}

// parsePEM decodes every certificate in a PEM bundle.
func parsePEM(t *testing.T, data string) []*x509.Certificate {
	t.Helper()
	certs, err := contract.ParseCertificates([]byte(data))
	require.NoError(t, err)
	return certs
}

// signLeaf has Vault sign a fresh CSR with a role and returns the leaf and its chain.
func signLeaf(t *testing.T, signPath, cn string) (leaf *x509.Certificate, chain []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	require.NoError(t, err)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	s, err := rootVault.Logical().Write(signPath, map[string]any{"csr": csr, "common_name": cn, "ttl": "1h"})
	require.NoError(t, err)
	leaf = parsePEM(t, s.Data["certificate"].(string))[0]
	for _, c := range s.Data["ca_chain"].([]any) {
		chain = append(chain, parsePEM(t, c.(string))...)
	}
	return leaf, chain
}

// verifyWithRoot checks that leaf chains to the root PEM in the CA's ConfigMap through
// the given intermediates.
func verifyWithRoot(t *testing.T, ns string, ca *v1alpha1.CertificateAuthority, leaf *x509.Certificate, intermediates []*x509.Certificate) {
	t.Helper()
	cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(context.Background(), ca.Status.ConfigMapName, metav1.GetOptions{})
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM([]byte(cm.Data["ca.crt"])))
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)
}

// events returns "Type Reason message" lines of the events about an object.
func events(t *testing.T, ns, name string) []string {
	t.Helper()
	list, err := env.KubeClient.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	require.NoError(t, err)
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Type+" "+e.Reason+" "+e.Message)
	}
	return out
}

// hasEvent waits for an event of that type and reason.
func hasEvent(t *testing.T, ns, name, typeAndReason string) {
	t.Helper()
	ok := assertEventually(30*time.Second, func() bool {
		for _, e := range events(t, ns, name) {
			if strings.HasPrefix(e, typeAndReason+" ") {
				return true
			}
		}
		return false
	})
	require.True(t, ok, "no %q event for %s/%s; got %v", typeAndReason, ns, name, events(t, ns, name))
}

// gone waits until the CA object no longer exists.
func gone(t *testing.T, ns, name string) {
	t.Helper()
	require.True(t, assertEventually(60*time.Second, func() bool {
		_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}), "CA %s/%s was not deleted", ns, name)
}

// mountsOf returns the Vault mounts of clusterID in namespace ns, as the operators compute them.
func mountsOf(t *testing.T, ns, clusterID string) pkipath.Mounts {
	t.Helper()
	m, err := pkipath.For(pkipath.DefaultPrefix, ns, clusterID)
	require.NoError(t, err)
	return m
}

// rootOf returns the root mount of clusterID in namespace ns.
func rootOf(ns, clusterID string) string {
	m, err := pkipath.For(pkipath.DefaultPrefix, ns, clusterID)
	if err != nil {
		panic(err)
	}
	return m.Root
}

// issuingOf returns the issuing mount of clusterID in namespace ns.
func issuingOf(ns, clusterID string) string {
	m, err := pkipath.For(pkipath.DefaultPrefix, ns, clusterID)
	if err != nil {
		panic(err)
	}
	return m.Issuing
}
