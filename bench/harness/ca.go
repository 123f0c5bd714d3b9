package harness

import (
	"context"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/test/kit/vaultca"
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

// baselineRole is the Vault role "server" the ca-operator makes for newCA's role.
var baselineRole = map[string]any{
	"issuer_ref": "default", "allowed_domains": []string{"example.com"}, "allow_subdomains": true,
	"allow_bare_domains": true, "allow_wildcard_certificates": true, "enforce_hostnames": true,
	"key_usage": []string{"DigitalSignature", "KeyEncipherment"}, "server_flag": true, "client_flag": true,
	"max_ttl": 31536000, "key_type": "any", "use_csr_common_name": true, "use_csr_sans": true,
	"require_cn": false, "no_store": true, "generate_lease": false}

// baselineCA provisions ca as the ca-operator would, without it: the Vault writes of the kit's
// CA recipe, the ConfigMap with the root, and one status write.
func baselineCA(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, v *vaultapi.Client, vaultAddr string, ca *v1alpha1.CertificateAuthority) error {
	made, err := vaultca.Create(ctx, v, vaultca.Options{Namespace: ca.Namespace, ClusterID: ca.Spec.ClusterID,
		CommonName: ca.Spec.Root.CommonName, Owner: "clusterpki: " + ca.Namespace + "/" + ca.Name, VaultAddr: vaultAddr,
		Roles: map[string]map[string]any{"server": baselineRole}})
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().ConfigMaps(ca.Namespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ca.Namespace, Name: contract.ConfigMapName(ca.Name)},
		Data:       map[string]string{contract.TrustKey: made.RootPEM},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	ca = ca.DeepCopy()
	ca.Status = made.Status(ca.Name, ca.Generation, "baseline")
	_, err = client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).UpdateStatus(ctx, ca, metav1.UpdateOptions{})
	return err
}
