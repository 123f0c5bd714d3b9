package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// ServiceAccountToken returns a token for ServiceAccount ns/name from the
// TokenRequest API, creating the namespace and ServiceAccount if absent.
// No audiences means the API server's (ServiceAccountIssuer); ttl 0 means
// the server default (an hour), and the server refuses less than 10 minutes.
func (e *Env) ServiceAccountToken(ctx context.Context, ns, name string, audiences []string, ttl time.Duration) (string, error) {
	c := e.KubeClient.CoreV1()
	_, err := c.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	_, err = c.ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	if ttl > 0 {
		secs := int64(ttl / time.Second)
		req.Spec.ExpirationSeconds = &secs
	}
	resp, err := c.ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return resp.Status.Token, nil
}

// NewUserConfig returns a rest.Config for the API server that authenticates
// with the bearer token (no client certificate).
func (e *Env) NewUserConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            e.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.CAData},
		BearerToken:     token,
		QPS:             e.RESTConfig.QPS,
		Burst:           e.RESTConfig.Burst,
	}
}

// WriteEnvFile writes shell exports of KUBECONFIG, VAULT_ADDR, VAULT_TOKEN
// and CLUSTERPKI_LOCAL_DIR (the work directory) to path, mode 0600.
func (e *Env) WriteEnvFile(path string) error {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"KUBECONFIG", e.Kubeconfig},
		{"VAULT_ADDR", e.VaultAddr},
		{"VAULT_TOKEN", e.VaultRootToken},
		{"CLUSTERPKI_LOCAL_DIR", e.Dir},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path) // readers never see half a file
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
