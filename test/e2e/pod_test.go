package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/test/kit/pod"
)

// startPod runs replica name of Deployment ns/deploy from binary the way a kubelet would run its
// pod (see the kit's pod package), reaching the API server as apiServiceAccount when set
// instead of the Deployment's ServiceAccount. The process, its files and its log live as long
// as scope, the test that owns it (t may be one of scope's subtests).
func startPod(ctx context.Context, t, scope *testing.T, binary, ns, deploy, name, apiServiceAccount string) *pod.Pod {
	t.Helper()
	d, err := env.KubeClient.AppsV1().Deployments(ns).Get(ctx, deploy, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment %s/%s: %v", ns, deploy, err)
	}
	dir := scope.TempDir()
	p, err := pod.Run(ctx, pod.Options{Deployment: d, Name: name, Binary: binary, Root: filepath.Join(dir, "root"),
		LogPath: filepath.Join(dir, name+".log"), Env: env, APIServiceAccount: apiServiceAccount})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Logf("pod %s: %s %s", name, filepath.Base(binary), strings.Join(p.Args, " "))
	scope.Cleanup(func() {
		p.Stop()
		if scope.Failed() {
			scope.Logf("--- log of %s:\n%s", name, p.Process().Log())
		}
	})
	return p
}

// get returns the status code of GET path on the pod's metrics server, or 0.
func get(p *pod.Pod, path string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.MetricsAddr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
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
