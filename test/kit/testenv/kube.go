package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// Names used in the generated credentials.
const (
	// AdminUser is the CN of the admin client certificate; its group is system:masters.
	AdminUser = "clusterpki-admin"
	// ServiceAccountIssuer is the issuer (and default audience) of ServiceAccount tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// ServiceClusterIPRange is the Service IP range of the API server.
	ServiceClusterIPRange = "10.0.0.0/24"
)

func (e *Env) startEtcd(clientURL, peerURL string) error {
	p, err := startProcess("etcd", filepath.Join(e.Dir, "etcd.log"), proc.EnvWithout("ETCD"), e.bins.etcd,
		"--name=testenv",
		"--data-dir="+filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testenv="+peerURL,
		"--log-level=warn",
		"--unsafe-no-fsync", // test data: speed over durability on power loss
	)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.etcd = p
	e.mu.Unlock()
	return nil
}

func (e *Env) waitEtcd(ctx context.Context, clientURL string) error {
	return poll(ctx, e.etcd, e.startLimit, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"true"`) {
			return fmt.Errorf("health: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// startAPIServer writes the certificates and keys, starts kube-apiserver on
// port and builds the admin clients.
func (e *Env) startAPIServer(etcdURL string, port int) error {
	pki := filepath.Join(e.Dir, "pki")
	ca, err := newCA("clusterpki-testenv-ca")
	if err != nil {
		return err
	}
	serving, err := newServing(ca, "kube-apiserver", "127.0.0.1", "localhost", "10.0.0.1",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	if err != nil {
		return err
	}
	admin, err := newClient(ca, AdminUser, "system:masters")
	if err != nil {
		return err
	}
	saKey, saPub, err := newSigningKey()
	if err != nil {
		return err
	}
	f := func(name string) string { return filepath.Join(pki, name) }
	if err := writeFiles(map[string][]byte{
		f("ca.crt"): ca.certPEM, f("ca.key"): ca.keyPEM,
		f("apiserver.crt"): serving.certPEM, f("apiserver.key"): serving.keyPEM,
		f("admin.crt"): admin.certPEM, f("admin.key"): admin.keyPEM,
		f("sa.key"): saKey, f("sa.pub"): saPub,
	}); err != nil {
		return err
	}
	e.CAFile, e.CAData = f("ca.crt"), ca.certPEM
	e.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(port)
	e.RESTConfig = &rest.Config{
		Host: e.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ca.certPEM, CertData: admin.certPEM, KeyData: admin.keyPEM,
		},
		QPS: 200, Burst: 400,
	}
	if e.KubeClient, err = kubernetes.NewForConfig(e.RESTConfig); err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := e.writeKubeconfig(e.Kubeconfig, admin); err != nil {
		return err
	}

	p, err := startProcess("kube-apiserver", filepath.Join(e.Dir, "kube-apiserver.log"), proc.EnvWithout("KUBECONFIG"), e.bins.apiserver,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", // the default one refuses a loopback address
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+pki,
		"--tls-cert-file="+f("apiserver.crt"),
		"--tls-private-key-file="+f("apiserver.key"),
		"--client-ca-file="+f("ca.crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer="+ServiceAccountIssuer,
		"--service-account-key-file="+f("sa.pub"),
		"--service-account-signing-key-file="+f("sa.key"),
		"--api-audiences="+ServiceAccountIssuer,
		"--service-cluster-ip-range="+ServiceClusterIPRange,
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.apiserver = p
	e.mu.Unlock()
	return nil
}

func (e *Env) waitAPIServer(ctx context.Context) error {
	rc := e.KubeClient.Discovery().RESTClient()
	return poll(ctx, e.apiserver, e.startLimit, func(ctx context.Context) error {
		body, err := rc.Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	})
}

// writeKubeconfig writes a kubeconfig for the admin user to path.
func (e *Env) writeKubeconfig(path string, admin *keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["clusterpki-local"] = &clientcmdapi.Cluster{
		Server: e.APIServerURL, CertificateAuthorityData: e.CAData,
	}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{
		ClientCertificateData: admin.certPEM, ClientKeyData: admin.keyPEM,
	}
	cfg.Contexts["clusterpki-local"] = &clientcmdapi.Context{
		Cluster: "clusterpki-local", AuthInfo: AdminUser, Namespace: "default",
	}
	cfg.CurrentContext = "clusterpki-local"
	return clientcmd.WriteToFile(*cfg, path)
}
