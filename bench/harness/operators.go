package harness

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/pod"
)

// replacedFlags are the Deployment flags the bench replaces: addresses and auth (the bench's
// Vault takes a token, not a ServiceAccount login) and leader election, which a single
// replica does not need and which, after a SIGKILL, would add the Lease's 15 s expiry to the
// restart figure (that is Kubernetes', not the operator's).
var replacedFlags = []string{"metrics-addr", "vault-auth", "vault-kubernetes-role", "vault-kubernetes-token-file", "leader-elect"}

// operator is one operator process, run as its shipped Deployment's pod (arguments,
// environment, memory limit) without a cluster around it: the kit's pod package.
type operator struct {
	*pod.Pod
	manifest string
	http     *http.Client
}

// newOperator prepares operator name (not started) from deploy/<name>/deployment.yaml under
// repoRoot, with the bench's flags and environment added.
func newOperator(ctx context.Context, repoRoot, name, bin, work, logDir string, env, flags []string) (*operator, error) {
	manifest := filepath.Join(repoRoot, "deploy", name, "deployment.yaml")
	d, err := pod.ReadDeployment(manifest)
	if err != nil {
		return nil, err
	}
	p, err := pod.New(ctx, pod.Options{Deployment: d, Name: name, Binary: bin, Root: filepath.Join(work, name),
		LogPath: filepath.Join(logDir, name+".log"), Drop: replacedFlags, Flags: flags, ExtraEnv: env})
	if err != nil {
		return nil, err
	}
	return &operator{Pod: p, manifest: strings.TrimPrefix(manifest, repoRoot+"/"), http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// start runs the operator (again, after it ended) and waits for /readyz.
func (o *operator) start(ctx context.Context) error {
	if err := o.Start(); err != nil {
		return err
	}
	return o.WaitReady(ctx, 2*time.Minute)
}

// pid returns the running process's id.
func (o *operator) pid() int { return o.Process().Pid() }

// metrics scrapes the operator's /metrics.
func (o *operator) metrics(ctx context.Context) (snapshot, error) {
	return scrape(ctx, o.http, "http://"+o.MetricsAddr+"/metrics")
}
