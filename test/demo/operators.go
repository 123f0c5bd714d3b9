package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusterpki/clusterpki/pkg/testenv"
	"github.com/clusterpki/clusterpki/test/internal/kubelet"
)

const (
	// tokenTTL is the lifetime of the ServiceAccount tokens the demo hands the operators, and
	// tokenRefresh how often it writes fresh ones (as the kubelet rotates projected tokens).
	tokenTTL     = time.Hour
	tokenRefresh = 20 * time.Minute
)

// localArgs are the flags the demo adds to a Deployment's arguments: a replica of a pod owns
// its port, here both operators share the loopback interface; there is one replica, so no
// leader election; and the API server is reached with a kubeconfig instead of in-cluster.
// All flags the demo passes to the operators are here and in tokenModeArgs.
func localArgs(kubeconfig, metricsAddr string) []string {
	return []string{"--kubeconfig=" + kubeconfig, "--metrics-addr=" + metricsAddr, "--leader-elect=false"}
}

// tokenModeArgs are the flags for an operator binary that cannot log in to Vault with
// Kubernetes auth (it has no --vault-auth flag): the Vault address and a token file, each only
// if the binary has the flag (the token also goes in the environment).
func tokenModeArgs(help, vaultAddr, tokenFile string) []string {
	var args []string
	add := func(flag, value string) {
		if hasFlag(help, flag) {
			args = append(args, "--"+flag+"="+value)
		}
	}
	add("vault-addr", vaultAddr)
	add("vault-auth", "token")
	add("vault-token-file", tokenFile)
	return args
}

// hasFlag reports whether a command's --help text lists --flag.
func hasFlag(help, flag string) bool {
	for _, after := range []string{" ", "=", "["} {
		if strings.Contains(help, "--"+flag+after) {
			return true
		}
	}
	return false
}

// operator is one operator process and what it needs refreshed.
type operator struct {
	name, metricsAddr string
	proc              *proc
	refresh           func(context.Context) error
}

// startOperators runs both operators and waits until each answers /readyz.
func (d *demo) startOperators(ctx context.Context) (string, error) {
	var modes []string
	var ops []*operator
	for _, name := range operators {
		op, mode, err := d.startOperator(ctx, name)
		if err != nil {
			return "", &stepError{step: "Run " + name, log: d.logPath(name), err: err}
		}
		ops = append(ops, op)
		modes = append(modes, name+": "+mode)
		d.operators = append(d.operators, op)
	}
	for _, op := range ops {
		if err := waitReady(ctx, op, 2*time.Minute); err != nil {
			return "", &stepError{step: "Run " + op.name, log: op.proc.logPath, err: err}
		}
	}
	return strings.Join(modes, "; "), nil
}

// startOperator runs operator name the way the kubelet would run its Deployment's pod: the
// container's arguments and environment (ConfigMap keys and pod fields resolved), its volumes
// written under a local root, and the API server reached as the pod's ServiceAccount.
func (d *demo) startOperator(ctx context.Context, name string) (*operator, string, error) {
	bin := filepath.Join(d.opts.binDir, name)
	kc := d.env.KubeClient
	dep, err := kc.AppsV1().Deployments(systemNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("deployment %s/%s (from deploy/default): %w", systemNamespace, name, err)
	}
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, "", fmt.Errorf("deployment %s has %d containers, want 1", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	root := d.path("operators", name)
	rewrite := mountRewriter(root, c.VolumeMounts)
	sa := spec.ServiceAccountName
	var refreshers []func(context.Context) error
	// tokenFile writes a token of the pod's ServiceAccount to path now and on every refresh.
	tokenFile := func(path string, audiences []string) error {
		f := func(ctx context.Context) error {
			tok, err := d.env.ServiceAccountToken(ctx, systemNamespace, sa, audiences, tokenTTL)
			if err != nil {
				return fmt.Errorf("token of ServiceAccount %s/%s: %w", systemNamespace, sa, err)
			}
			return writeFileAtomic(path, []byte(tok))
		}
		refreshers = append(refreshers, f)
		return f(ctx)
	}

	// Volumes.
	for _, m := range c.VolumeMounts {
		var v *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == m.Name {
				v = &spec.Volumes[i]
			}
		}
		if v == nil {
			return nil, "", fmt.Errorf("volume mount %s has no volume", m.Name)
		}
		dir := filepath.Join(root, m.MountPath)
		switch {
		case v.ConfigMap != nil:
			cm, err := kc.CoreV1().ConfigMaps(systemNamespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, "", fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for _, item := range v.ConfigMap.Items {
				if err := writeFile(filepath.Join(dir, item.Path), []byte(cm.Data[item.Key])); err != nil {
					return nil, "", err
				}
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken == nil {
					return nil, "", fmt.Errorf("volume %s: only serviceAccountToken projections are run locally", v.Name)
				}
				if err := tokenFile(filepath.Join(dir, src.ServiceAccountToken.Path), []string{src.ServiceAccountToken.Audience}); err != nil {
					return nil, "", err
				}
			}
		default:
			return nil, "", fmt.Errorf("volume %s: only ConfigMap and projected token volumes are run locally", v.Name)
		}
	}

	// The API server, as the ServiceAccount (its token re-read by client-go from the file).
	apiToken := filepath.Join(root, "var/run/secrets/kubernetes.io/serviceaccount/token")
	if err := tokenFile(apiToken, nil); err != nil {
		return nil, "", err
	}
	kubeconfig := filepath.Join(root, "kubeconfig")
	if err := d.writeTokenKubeconfig(kubeconfig, apiToken); err != nil {
		return nil, "", err
	}

	// Environment, as the kubelet resolves it.
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "HOSTNAME=" + name + "-demo"}
	for _, e := range c.Env {
		val := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.ConfigMapKeyRef != nil:
				cm, err := kc.CoreV1().ConfigMaps(systemNamespace).Get(ctx, src.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, "", fmt.Errorf("env %s: %w", e.Name, err)
				}
				val = cm.Data[src.ConfigMapKeyRef.Key]
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.namespace":
				val = systemNamespace
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.name":
				val = name + "-demo"
			case src.ResourceFieldRef != nil:
				v, err := kubelet.ResourceFieldValue(c, src.ResourceFieldRef)
				if err != nil {
					return nil, "", fmt.Errorf("env %s: %w", e.Name, err)
				}
				val = v
			default:
				return nil, "", fmt.Errorf("env %s: value source not run locally", e.Name)
			}
		}
		environ = append(environ, e.Name+"="+rewrite(val))
	}

	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	help, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	var args []string
	mode := "Vault Kubernetes auth as ServiceAccount " + systemNamespace + "/" + sa
	if hasFlag(string(help), "vault-auth") {
		args = append(append(args, c.Command...), c.Args...)
		for i := range args {
			args[i] = rewrite(args[i])
		}
	} else {
		// Fallback: this build of the operator only takes a Vault token. Give it one limited to
		// the operator's shipped policy, so least privilege still holds.
		tok, err := d.policyToken(ctx, "clusterpki-"+name)
		if err != nil {
			return nil, "", err
		}
		vaultTokenFile := filepath.Join(root, "vault-token")
		if err := writeFile(vaultTokenFile, []byte(tok)); err != nil {
			return nil, "", err
		}
		environ = append(environ, "VAULT_ADDR="+d.env.VaultAddr, "VAULT_TOKEN="+tok, "CLUSTERPKI_VAULT_TOKEN="+tok)
		args = tokenModeArgs(string(help), d.env.VaultAddr, vaultTokenFile)
		mode = "FALLBACK: Vault token with policy clusterpki-" + name + " (this binary has no --vault-auth)"
	}
	for _, a := range localArgs(kubeconfig, metricsAddr) {
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if hasFlag(string(help), flag) {
			args = append(args, a)
		}
	}
	p, err := d.procs.start(name, d.logPath(name), environ, bin, args...)
	if err != nil {
		return nil, "", err
	}
	op := &operator{name: name, metricsAddr: metricsAddr, proc: p, refresh: func(ctx context.Context) error {
		var errs []error
		for _, f := range refreshers {
			errs = append(errs, f(ctx))
		}
		return errors.Join(errs...)
	}}
	return op, mode, nil
}

// policyToken creates a Vault token with only policy (fallback when an operator cannot use
// Kubernetes auth).
func (d *demo) policyToken(ctx context.Context, policy string) (string, error) {
	c, err := d.env.VaultClient()
	if err != nil {
		return "", err
	}
	s, err := c.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{policy}, NoDefaultPolicy: true, TTL: "768h", DisplayName: "demo-" + policy,
	})
	if err != nil {
		return "", fmt.Errorf("vault token with policy %s: %w", policy, err)
	}
	return s.Auth.ClientToken, nil
}

// refreshTokens writes fresh ServiceAccount tokens for the operators.
func (d *demo) refreshTokens(ctx context.Context) error {
	var errs []error
	for _, op := range d.operators {
		errs = append(errs, op.refresh(ctx))
	}
	return errors.Join(errs...)
}

// waitReady waits until op answers 200 on /readyz.
func waitReady(ctx context.Context, op *operator, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		if op.proc.exited() {
			return exitError(op.proc)
		}
		resp, err := client.Get("http://" + op.metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (/readyz: %s); log %s:\n%s", op.name, limit, last, op.proc.logPath, testenv.Tail(op.proc.logPath, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// mountRewriter returns a function that moves paths under the container's volume mounts under root.
func mountRewriter(root string, mounts []corev1.VolumeMount) func(string) string {
	return func(s string) string {
		for _, m := range mounts {
			mp := strings.TrimSuffix(m.MountPath, "/")
			if i := strings.Index(s, mp); i >= 0 && (len(s) == i+len(mp) || s[i+len(mp)] == '/') {
				return s[:i] + filepath.Join(root, mp) + s[i+len(mp):]
			}
		}
		return s
	}
}

// writeTokenKubeconfig writes a kubeconfig for the local API server whose token is read from
// tokenFile (client-go re-reads it, so refreshed tokens are picked up).
func (d *demo) writeTokenKubeconfig(path, tokenFile string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: d.env.APIServerURL, CertificateAuthorityData: d.env.CAData}
	cfg.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{TokenFile: tokenFile}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "serviceaccount"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

var writeMu sync.Mutex

// writeFileAtomic replaces path with data (mode 0600) so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	writeMu.Lock()
	defer writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
