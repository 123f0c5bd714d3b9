package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/test/kit/proc"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// proofStartLimit bounds the start of the second etcd and kube-apiserver each.
const proofStartLimit = 3 * time.Minute

// proofResult is what the second API server answered.
type proofResult struct {
	server, kubeconfig string
	namespaces, whoami string
}

// proof starts a second etcd and kube-apiserver that use nothing but what the operators issued
// (and the root the ca-operator published) and asks it for its namespaces with the issued
// system:masters certificate.
func (d *demo) proof(ctx context.Context) (*proofResult, error) {
	ns := d.opts.namespace
	core := d.env.KubeClient.CoreV1()
	pki := d.path("proof", "pki")
	f := func(name string) string { return filepath.Join(pki, name) }

	// The only trust anchor: the root in the CA's ConfigMap.
	cm, err := core.ConfigMaps(ns).Get(ctx, caConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", ns, caConfigMap, err)
	}
	if _, err := contract.ParseCertificates([]byte(cm.Data["ca.crt"])); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s ca.crt: %w", ns, caConfigMap, err)
	}
	files := map[string][]byte{f("ca.crt"): []byte(cm.Data["ca.crt"])}
	for _, s := range []string{secretAPIServer, secretEtcdClient, secretKubeletClient, secretSASigner, secretEtcdServer, secretEtcdPeer, secretAdmin} {
		sec, err := core.Secrets(ns).Get(ctx, s, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("Secret %s/%s: %w", ns, s, err)
		}
		files[f(s+".crt")] = sec.Data["tls.crt"] // leaf and issuing CA
		files[f(s+".key")] = sec.Data["tls.key"]
	}
	pub, err := publicKeyPEM(files[f(secretSASigner+".key")])
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s tls.key: %w", ns, secretSASigner, err)
	}
	files[f("service-account.pub")] = pub
	for p, data := range files {
		if err := proc.WriteFile(p, data); err != nil {
			return nil, err
		}
	}
	return d.bootFromPKI(ctx, pki)
}

// bootFromPKI starts the second etcd and kube-apiserver from the files in pki (ca.crt, and
// <secret>.crt and <secret>.key per issued Secret) and runs kubectl against it.
func (d *demo) bootFromPKI(ctx context.Context, pki string) (*proofResult, error) {
	f := func(name string) string { return filepath.Join(pki, name) }
	bins := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		path, err := testenv.Binary(name)
		if err != nil {
			return nil, err
		}
		bins[name] = path
	}
	ports := make([]int, 3)
	for i := range ports {
		addr, err := proc.FreeAddr()
		if err != nil {
			return nil, err
		}
		ports[i], _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	}
	etcdURL := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	server := fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	// etcd: serving and peer certificates issued by cert-operator; clients must present a
	// certificate that chains to the root.
	etcd, err := d.procs.start("proof-etcd", d.logPath("proof-etcd"), proc.EnvWithout("ETCD"), bins["etcd"],
		"--name=proof",
		"--data-dir="+d.path("proof", "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=proof="+peerURL,
		"--cert-file="+f(secretEtcdServer+".crt"), "--key-file="+f(secretEtcdServer+".key"),
		"--client-cert-auth", "--trusted-ca-file="+f("ca.crt"),
		"--peer-cert-file="+f(secretEtcdPeer+".crt"), "--peer-key-file="+f(secretEtcdPeer+".key"),
		"--peer-client-cert-auth", "--peer-trusted-ca-file="+f("ca.crt"),
		"--log-level=warn", "--unsafe-no-fsync",
	)
	if err != nil {
		return nil, err
	}
	etcdClient, err := tlsClient(f("ca.crt"), f(secretEtcdClient+".crt"), f(secretEtcdClient+".key"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, etcd, etcdClient, etcdURL+"/health", `"health":"true"`); err != nil {
		return nil, &stepError{step: "Start the second etcd", log: etcd.LogPath, err: err}
	}

	// kube-apiserver: every certificate and key issued by cert-operator, the root as the only
	// CA it trusts for clients.
	api, err := d.procs.start("proof-kube-apiserver", d.logPath("proof-kube-apiserver"), proc.EnvWithout("KUBECONFIG"), bins["kube-apiserver"],
		"--etcd-servers="+etcdURL,
		"--etcd-cafile="+f("ca.crt"),
		"--etcd-certfile="+f(secretEtcdClient+".crt"), "--etcd-keyfile="+f(secretEtcdClient+".key"),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", // no kubelets, no Service endpoints to keep
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+d.path("proof", "apiserver"),
		"--tls-cert-file="+f(secretAPIServer+".crt"), "--tls-private-key-file="+f(secretAPIServer+".key"),
		"--client-ca-file="+f("ca.crt"),
		"--kubelet-client-certificate="+f(secretKubeletClient+".crt"), "--kubelet-client-key="+f(secretKubeletClient+".key"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+f("service-account.pub"),
		"--service-account-signing-key-file="+f(secretSASigner+".key"),
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return nil, err
	}
	adminClient, err := tlsClient(f("ca.crt"), f(secretAdmin+".crt"), f(secretAdmin+".key"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, api, adminClient, server+"/readyz", "ok"); err != nil {
		return nil, &stepError{step: "Start the second kube-apiserver", log: api.LogPath, err: err}
	}

	kubeconfig := d.path("proof", "kubeconfig")
	if err := writeCertKubeconfig(kubeconfig, server, f("ca.crt"), f(secretAdmin+".crt"), f(secretAdmin+".key")); err != nil {
		return nil, err
	}
	res := &proofResult{server: server, kubeconfig: kubeconfig}
	// The bootstrap controller creates the system namespaces right after the API server is ready.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := d.runOutput(ctx, "proof-kubectl", nil, "kubectl", "--kubeconfig="+kubeconfig, "get", "namespaces")
		if err == nil && strings.Contains(out, "default") && strings.Contains(out, "kube-system") {
			res.namespaces = out
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("the answer lists no default and kube-system namespaces:\n%s", out)
			}
			return nil, err
		}
		time.Sleep(time.Second)
	}
	// Who the API server took us for (informational: needs a kubectl with auth whoami).
	if out, err := d.runOutput(ctx, "proof-kubectl", nil, "kubectl", "--kubeconfig="+kubeconfig, "auth", "whoami"); err == nil {
		res.whoami = out
	}
	return res, nil
}

func (d *demo) printProof(r *proofResult) {
	fmt.Fprintf(d.out, `
The second cluster: etcd and kube-apiserver at %s run on the issued certificates only
(serving, peer, etcd client, kubelet client, ServiceAccount signing key; trust anchor: ConfigMap %s ca.crt).

$ KUBECONFIG=%s kubectl get namespaces    # as the issued admin certificate
%s`, r.server, caConfigMap, relToCwd(r.kubeconfig), indent(strings.TrimRight(r.namespaces, "\n")))
	if r.whoami != "" {
		fmt.Fprintf(d.out, "\n$ kubectl auth whoami\n%s", indent(strings.TrimRight(r.whoami, "\n")))
	}
	fmt.Fprintf(d.out, "\n\n%s\n", SuccessMarker)
}

// publicKeyPEM returns the PKIX public key of the PEM private key keyPEM.
func publicKeyPEM(keyPEM []byte) ([]byte, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T has no public key", key)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// tlsClient returns an HTTP client that trusts only caFile and presents certFile (the leaf and
// its issuing CA) with keyFile.
func tlsClient(caFile, certFile, keyFile string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

// waitHTTP polls url with client until the answer is 200 and contains want, p exits, or
// proofStartLimit passes.
func waitHTTP(ctx context.Context, p *proc.Process, client *http.Client, url, want string) error {
	deadline := time.Now().Add(proofStartLimit)
	last := ""
	for {
		if done, _ := p.Exited(); done {
			return p.ExitError()
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (last: %s); log %s:\n%s", p.Name, proofStartLimit, last, p.LogPath, proc.Tail(p.LogPath, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// writeCertKubeconfig writes a kubeconfig that verifies the server against caFile and
// authenticates with the client certificate in certFile and keyFile (paths, so one can look).
func writeCertKubeconfig(path, server, caFile, certFile, keyFile string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proof"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile}
	cfg.AuthInfos["tenant-a-admin"] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts["proof"] = &clientcmdapi.Context{Cluster: "proof", AuthInfo: "tenant-a-admin"}
	cfg.CurrentContext = "proof"
	return clientcmd.WriteToFile(*cfg, path)
}
