package harness

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// newCA is the i-th CertificateAuthority of ns, cluster prefix-i, with one role "server".
func newCA(ns, prefix string, i int) *v1alpha1.CertificateAuthority {
	id := fmt.Sprintf("%s-%03d", prefix, i)
	return &v1alpha1.CertificateAuthority{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: caName(i)},
		Spec: v1alpha1.CertificateAuthoritySpec{
			ClusterID: id,
			Root:      v1alpha1.RootCASpec{CommonName: id + " Root CA"},
			Roles: []v1alpha1.RoleSpec{{Name: "server", AllowedDomains: []string{"example.com"},
				AllowSubdomains: true, AllowBareDomains: true, MaxTTL: "8760h"}},
		},
	}
}

// provisionCAs creates n CAs at once in ns and waits until all are Ready; it returns the
// time from the first create to the last Ready, and the Ready times.
func provisionCAs(ctx context.Context, client versioned.Interface, ns string, n, creators int, limit time.Duration) (latencyStats, error) {
	created := make([]time.Time, n)
	start := time.Now()
	if err := parallel(ctx, creators, 0, n, func(ctx context.Context, i int) error {
		created[i] = time.Now()
		_, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, newCA(ns, "op", i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return latencyStats{}, fmt.Errorf("create CAs: %w", err)
	}
	ready := map[string]time.Time{}
	deadline := time.Now().Add(limit)
	for len(ready) < n {
		list, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return latencyStats{}, err
		}
		now := time.Now()
		for _, ca := range list.Items {
			if _, seen := ready[ca.Name]; !seen && isReady(ca.Status.Conditions, ca.Generation) {
				ready[ca.Name] = now
			}
		}
		if time.Now().After(deadline) {
			return latencyStats{}, fmt.Errorf("only %d of %d CertificateAuthorities Ready after %v", len(ready), n, limit)
		}
		select {
		case <-ctx.Done():
			return latencyStats{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var lat []time.Duration
	var at []time.Time
	for i := range n {
		r := ready[caName(i)]
		lat = append(lat, r.Sub(created[i]))
		at = append(at, r)
	}
	return summarize(start, lat, at), nil
}

// baselineCAs makes, for n CAs in ns (a namespace no operator watches), the Vault writes the
// ca-operator makes to provision a CA (two mounts, root, issuing CA signed by it, issuer name
// and default, URL/CRL/auto-tidy config of both mounts, one role), the ConfigMap with the root
// and one status write, with workers goroutines (the ca-operator's --workers).
func baselineCAs(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, v *vaultapi.Client, vaultAddr, ns string, n, workers int) (latencyStats, error) {
	start := time.Now()
	lat := make([]time.Duration, n)
	at := make([]time.Time, n)
	err := parallel(ctx, workers, 0, n, func(ctx context.Context, i int) error {
		t0 := time.Now()
		ca, err := client.ClusterpkiV1alpha1().CertificateAuthorities(ns).Create(ctx, newCA(ns, "bl", i), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if err := baselineCA(ctx, kube, client, v, vaultAddr, ca); err != nil {
			return fmt.Errorf("baseline CA %s: %w", ca.Name, err)
		}
		at[i] = time.Now()
		lat[i] = at[i].Sub(t0)
		return nil
	})
	if err != nil {
		return latencyStats{}, err
	}
	return summarize(start, lat, at), nil
}

func baselineCA(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, v *vaultapi.Client, vaultAddr string, ca *v1alpha1.CertificateAuthority) error {
	mounts, err := pkipath.For(pkipath.DefaultPrefix, ca.Namespace, ca.Spec.ClusterID)
	if err != nil {
		return err
	}
	rootMount, issMount := mounts.Root, mounts.Issuing
	owner := "clusterpki: " + ca.Namespace + "/" + ca.Name
	for _, m := range []string{rootMount, issMount} {
		if err := v.Sys().MountWithContext(ctx, m, &vaultapi.MountInput{Type: "pki", Description: owner,
			Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
			return err
		}
	}
	w := func(path string, data map[string]any) (*vaultapi.Secret, error) {
		return v.Logical().WriteWithContext(ctx, path, data)
	}
	root, err := w(rootMount+"/root/generate/internal", map[string]any{
		"common_name": ca.Spec.Root.CommonName, "key_type": "ec", "key_bits": 256, "ttl": "315360000",
		"issuer_name": "root", "key_name": "root"})
	if err != nil {
		return err
	}
	rootPEM, _ := root.Data["certificate"].(string)
	gen, err := w(issMount+"/intermediate/generate/internal", map[string]any{
		"common_name": ca.Spec.Root.CommonName + " Issuing CA", "key_type": "ec", "key_bits": 256})
	if err != nil {
		return err
	}
	signed, err := w(rootMount+"/root/sign-intermediate", map[string]any{
		"csr": gen.Data["csr"], "common_name": ca.Spec.Root.CommonName + " Issuing CA", "ttl": "157680000",
		"format": "pem", "use_csr_values": false})
	if err != nil {
		return err
	}
	issPEM, _ := signed.Data["certificate"].(string)
	set, err := w(issMount+"/intermediate/set-signed", map[string]any{"certificate": strings.TrimSpace(issPEM) + "\n" + rootPEM})
	if err != nil {
		return err
	}
	var issuerID string
	if ids, ok := set.Data["imported_issuers"].([]any); ok && len(ids) > 0 {
		issuerID, _ = ids[0].(string)
	}
	if issuerID != "" {
		if _, err := w(issMount+"/issuer/"+issuerID, map[string]any{"issuer_name": "issuing"}); err != nil {
			return err
		}
		if _, err := w(issMount+"/config/issuers", map[string]any{"default": issuerID}); err != nil {
			return err
		}
	}
	for _, m := range []string{rootMount, issMount} {
		base := strings.TrimRight(vaultAddr, "/") + "/v1/" + m
		for path, data := range map[string]map[string]any{
			"/config/urls": {"issuing_certificates": []string{base + "/ca"}, "crl_distribution_points": []string{base + "/crl"}},
			"/config/crl":  {"auto_rebuild": true, "expiry": "72h"},
			"/config/auto-tidy": {"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true,
				"interval_duration": 43200},
		} {
			if _, err := w(m+path, data); err != nil {
				return err
			}
		}
	}
	if _, err := w(issMount+"/roles/server", map[string]any{
		"issuer_ref": "default", "allowed_domains": []string{"example.com"}, "allow_subdomains": true,
		"allow_bare_domains": true, "allow_wildcard_certificates": true, "enforce_hostnames": true,
		"key_usage": []string{"DigitalSignature", "KeyEncipherment"}, "server_flag": true, "client_flag": true,
		"max_ttl": 31536000, "key_type": "any", "use_csr_common_name": true, "use_csr_sans": true,
		"require_cn": false, "no_store": true, "generate_lease": false}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ConfigMaps(ca.Namespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ca.Namespace, Name: ca.Name + "-ca"},
		Data:       map[string]string{"ca.crt": rootPEM},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	ca = ca.DeepCopy()
	ca.Status = v1alpha1.CertificateAuthorityStatus{
		ObservedGeneration: ca.Generation,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Provisioned",
			Message: "baseline", ObservedGeneration: ca.Generation, LastTransitionTime: metav1.Now()}},
		RootMount: rootMount, IssuingMount: issMount,
		Roles:         []v1alpha1.ProvisionedRole{{Name: "server", SignPath: issMount + "/sign/server", RevokePath: issMount + "/revoke"}},
		Root:          caCertStatus(rootPEM),
		Issuing:       caCertStatus(issPEM),
		ConfigMapName: ca.Name + "-ca",
	}
	_, err = client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	return err
}

func caCertStatus(p string) *v1alpha1.CACertificateStatus {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(c.Raw)
	return &v1alpha1.CACertificateStatus{SerialNumber: c.SerialNumber.String(), FingerprintSHA256: hex.EncodeToString(sum[:]),
		NotBefore: metav1.NewTime(c.NotBefore), NotAfter: metav1.NewTime(c.NotAfter)}
}
