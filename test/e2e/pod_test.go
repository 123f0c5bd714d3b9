package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clusterpki/clusterpki/test/internal/kubelet"
)

// pod is an operator replica run as a local process the way a kubelet would run the shipped
// Deployment's pod: its arguments and environment (ConfigMap keys and pod fields resolved), its
// ConfigMap and projected ServiceAccount token volumes written under a local root, and the API
// server reached with a TokenRequest token of the pod's ServiceAccount.
type pod struct {
	name    string
	logPath string
	metrics string // host:port of the metrics, health and readiness server

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// podOptions change how a pod runs.
type podOptions struct {
	// APIServiceAccount, when set, is the ServiceAccount whose token reaches the API server,
	// instead of the Deployment's (the Vault token still comes from the Deployment's).
	APIServiceAccount string
}

// startPod runs replica name of deployment ns/deploy with binary. The process, its files and
// its log live as long as scope, the test that owns it (t may be one of scope's subtests).
func startPod(ctx context.Context, t, scope *testing.T, binary, ns, deploy, name string, opts podOptions) *pod {
	t.Helper()
	d, err := env.KubeClient.AppsV1().Deployments(ns).Get(ctx, deploy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment %s/%s: %v", ns, deploy, err)
	}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("deployment %s has %d containers, want 1", deploy, len(spec.Containers))
	}
	c := spec.Containers[0]
	root := filepath.Join(scope.TempDir(), "root")
	rewrite := mountRewriter(root, c.VolumeMounts)

	// Volumes.
	for _, m := range c.VolumeMounts {
		v := findVolume(t, spec.Volumes, m.Name)
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		switch {
		case v.ConfigMap != nil:
			cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			for _, item := range v.ConfigMap.Items {
				writeFile(t, filepath.Join(dir, item.Path), []byte(cm.Data[item.Key]))
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken == nil {
					t.Fatalf("volume %s: only serviceAccountToken projections are simulated", v.Name)
				}
				ttl := 10 * time.Minute
				if s := src.ServiceAccountToken.ExpirationSeconds; s != nil && time.Duration(*s)*time.Second > ttl {
					ttl = time.Duration(*s) * time.Second
				}
				tok, err := env.ServiceAccountToken(ctx, ns, spec.ServiceAccountName, []string{src.ServiceAccountToken.Audience}, ttl)
				if err != nil {
					t.Fatalf("token for volume %s: %v", v.Name, err)
				}
				writeFile(t, filepath.Join(dir, src.ServiceAccountToken.Path), []byte(tok))
			}
		default:
			t.Fatalf("volume %s: kind not simulated", v.Name)
		}
	}

	// The API server, as the ServiceAccount.
	sa := spec.ServiceAccountName
	if opts.APIServiceAccount != "" {
		sa = opts.APIServiceAccount
	}
	tok, err := env.ServiceAccountToken(ctx, ns, sa, nil, time.Hour)
	if err != nil {
		t.Fatalf("API token of %s/%s: %v", ns, sa, err)
	}
	kubeconfig := filepath.Join(root, "kubeconfig")
	writeKubeconfig(t, kubeconfig, tok)

	// Environment, as the kubelet resolves it.
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "HOSTNAME=" + name}
	for _, e := range c.Env {
		val := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.ConfigMapKeyRef != nil:
				cm, err := env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, src.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("env %s: %v", e.Name, err)
				}
				v, ok := cm.Data[src.ConfigMapKeyRef.Key]
				if !ok {
					t.Fatalf("env %s: ConfigMap %s has no key %s", e.Name, cm.Name, src.ConfigMapKeyRef.Key)
				}
				val = v
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.namespace":
				val = ns
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.name":
				val = name
			case src.ResourceFieldRef != nil:
				v, err := kubelet.ResourceFieldValue(c, src.ResourceFieldRef)
				if err != nil {
					t.Fatalf("env %s: %v", e.Name, err)
				}
				val = v
			default:
				t.Fatalf("env %s: source not simulated", e.Name)
			}
		}
		environ = append(environ, e.Name+"="+rewrite(val))
	}

	metricsAddr := freeAddr(t)
	args := append([]string{}, c.Command...)
	args = append(args, c.Args...)
	for i := range args {
		args[i] = rewrite(args[i])
	}
	// A pod's port is its own; here two replicas share the loopback interface.
	args = append(args, "--kubeconfig="+kubeconfig, "--metrics-addr="+metricsAddr)

	p := &pod{name: name, logPath: filepath.Join(scope.TempDir(), name+".log"), metrics: metricsAddr, done: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = environ
	p.cmd.Dir = root
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	t.Logf("pod %s: %s %s", name, filepath.Base(binary), strings.Join(args, " "))
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	scope.Cleanup(func() {
		p.stop()
		if scope.Failed() {
			scope.Logf("--- log of %s:\n%s", name, p.log())
		}
	})
	return p
}

// stop sends SIGTERM and waits up to 20 seconds before killing the process.
func (p *pod) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and how.
func (p *pod) exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// log returns what the process wrote so far.
func (p *pod) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// get returns the status code of GET path on the pod's metrics server, or 0.
func (p *pod) get(path string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.metrics + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
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

func findVolume(t *testing.T, vols []corev1.Volume, name string) corev1.Volume {
	t.Helper()
	for _, v := range vols {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("volume mount %s has no volume", name)
	return corev1.Volume{}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeKubeconfig writes a kubeconfig for the test API server that authenticates with token.
func writeKubeconfig(t *testing.T, path, token string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: env.APIServerURL, CertificateAuthorityData: env.CAData}
	cfg.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run runs a command with extra environment and returns its combined output, failing the test
// on error.
func run(t *testing.T, extraEnv []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(extraEnv, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runErr runs a command with extra environment and returns its combined output.
func runErr(extraEnv []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// kubectl runs kubectl as the test's administrator.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, nil, "kubectl", append([]string{"--kubeconfig=" + env.Kubeconfig}, args...)...)
}

// eventually polls check every half second until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
