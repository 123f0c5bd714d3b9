// Package pod runs one replica of a shipped Deployment (deploy/<operator>/deployment.yaml) as a
// local process, the way a kubelet would run its pod: the container's command and arguments,
// its environment resolved as the kubelet resolves it (ConfigMap keys, pod fields, resource
// limits such as GOMEMLIMIT), its ConfigMap and projected ServiceAccount token volumes written
// under a local root, and the API server reached with a token of the pod's ServiceAccount. The
// local control plane has no kubelet, so the demo, the end-to-end test and the bench play its
// part with this package.
package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/test/kit/proc"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// tokenTTL is the lifetime of the API server token, and of a projected token whose volume sets
// none: the kubelet's default of an hour. Refresh writes new ones, as the kubelet rotates them.
const tokenTTL = time.Hour

// apiTokenPath is where the pod's API server token is mounted in every container.
const apiTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Options say which replica of which Deployment runs, from which binary, and where.
type Options struct {
	// Deployment is the shipped Deployment; its pod template has one container.
	Deployment *appsv1.Deployment
	// Name is the pod's name: its HOSTNAME and metadata.name.
	Name string
	// Binary is the operator binary the container's command runs.
	Binary string
	// Root is a local folder that stands in for the container's file system: the volumes are
	// written under it, paths under a volume mount in the arguments and environment are moved
	// under it, and it is the process's working directory and HOME.
	Root string
	// LogPath is the file the process's output is appended to.
	LogPath string
	// Env is the control plane the pod runs in: ConfigMaps (volumes, environment) are read from
	// its API server in the Deployment's namespace, and ServiceAccount tokens (projected volumes,
	// the API server's) come from its TokenRequest API; the process reaches the API server with a
	// kubeconfig holding that token (--kubeconfig). Nil runs the container without a cluster:
	// no volume is written, and environment values from ConfigMaps or pod fields are left out,
	// so Flags must say what they would have.
	Env *testenv.Env
	// APIServiceAccount, when set, is the ServiceAccount whose token reaches the API server,
	// instead of the Deployment's (the projected tokens still are the Deployment's).
	APIServiceAccount string
	// Drop names flags of the Deployment (without dashes) that are left out.
	Drop []string
	// Flags ("--name=value") follow the Deployment's arguments and so win over a flag of the
	// same name; --metrics-addr (a free loopback address: a pod's port is its own, here pods
	// share the loopback interface) and, with Env, --kubeconfig are added to them.
	Flags []string
	// ExtraEnv follows the container's resolved environment.
	ExtraEnv []string
}

// Pod is a replica ready to run (New) or running (Start).
type Pod struct {
	// Name is the pod's name.
	Name string
	// MetricsAddr is the host:port of the metrics, health and readiness server.
	MetricsAddr string
	// ContainerArgs are the Deployment's arguments the process gets (Drop left out, paths
	// moved under Root), and ContainerEnv the container's environment as resolved.
	ContainerArgs, ContainerEnv []string
	// Args are the process's full arguments.
	Args []string
	// MemoryLimitBytes is the container's memory limit (0 when it has none).
	MemoryLimitBytes int64

	opts    Options
	environ []string
	tokens  []tokenFile

	mu   sync.Mutex
	proc *proc.Process
}

// tokenFile is a ServiceAccount token written to path, refreshed by Refresh.
type tokenFile struct {
	path, namespace, serviceAccount string
	audiences                       []string
	ttl                             time.Duration
}

// ReadDeployment reads the Deployment manifest at path (deploy/<name>/deployment.yaml).
func ReadDeployment(path string) (*appsv1.Deployment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &appsv1.Deployment{}
	if err := yaml.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// New prepares the replica opts describe: it writes its volumes, tokens and kubeconfig and
// works out its command line and environment. Start runs it.
func New(ctx context.Context, opts Options) (*Pod, error) {
	spec := opts.Deployment.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, fmt.Errorf("deployment %s has %d containers, want 1", opts.Deployment.Name, len(spec.Containers))
	}
	c := spec.Containers[0]
	p := &Pod{Name: opts.Name, opts: opts}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		p.MemoryLimitBytes = q.Value()
	}
	rewrite := mountRewriter(opts.Root, c.VolumeMounts)
	if opts.Env != nil {
		if err := p.writeVolumes(ctx, spec, c); err != nil {
			return nil, err
		}
	}
	var err error
	if p.ContainerEnv, err = p.resolveEnv(ctx, c, rewrite); err != nil {
		return nil, err
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !slices.Contains(opts.Drop, flag) {
			p.ContainerArgs = append(p.ContainerArgs, rewrite(a))
		}
	}
	if p.MetricsAddr, err = proc.FreeAddr(); err != nil {
		return nil, err
	}
	p.Args = append(slices.Clone(p.ContainerArgs), opts.Flags...)
	p.Args = append(p.Args, "--metrics-addr="+p.MetricsAddr)
	if opts.Env != nil {
		kubeconfig, err := p.writeAPIAccess(ctx, spec)
		if err != nil {
			return nil, err
		}
		p.Args = append(p.Args, "--kubeconfig="+kubeconfig)
	}
	p.environ = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + opts.Root, "HOSTNAME=" + opts.Name}, p.ContainerEnv...)
	p.environ = append(p.environ, opts.ExtraEnv...)
	return p, nil
}

// Run is New, then Start.
func Run(ctx context.Context, opts Options) (*Pod, error) {
	p, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p, p.Start()
}

// Start starts the process (again, after it ended).
func (p *Pod) Start() error {
	if err := os.MkdirAll(p.opts.Root, 0o700); err != nil {
		return err
	}
	pr, err := proc.Start(proc.Spec{Name: p.Name, Path: p.opts.Binary, Args: p.Args, Env: p.environ,
		Dir: p.opts.Root, LogPath: p.opts.LogPath})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.proc = pr
	p.mu.Unlock()
	return nil
}

// Process returns the running (or last) process.
func (p *Pod) Process() *proc.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc
}

// WaitReady waits until the process answers 200 on /readyz, failing early if it exits.
func (p *Pod) WaitReady(ctx context.Context, limit time.Duration) error {
	return p.Process().WaitReady(ctx, "http://"+p.MetricsAddr+"/readyz", limit)
}

// Stop stops the process (SIGTERM, then SIGKILL); Kill kills it.
func (p *Pod) Stop() { p.Process().Stop() }

// Kill sends SIGKILL and waits for the exit.
func (p *Pod) Kill() { p.Process().Kill() }

// Refresh writes new ServiceAccount tokens, as the kubelet rotates projected tokens.
func (p *Pod) Refresh(ctx context.Context) error {
	var errs []error
	for _, t := range p.tokens {
		errs = append(errs, p.writeToken(ctx, t))
	}
	return errors.Join(errs...)
}

// addToken writes a token of serviceAccount for audiences to path, now and on every Refresh.
func (p *Pod) addToken(ctx context.Context, t tokenFile) error {
	p.tokens = append(p.tokens, t)
	return p.writeToken(ctx, t)
}

func (p *Pod) writeToken(ctx context.Context, t tokenFile) error {
	tok, err := p.opts.Env.ServiceAccountToken(ctx, t.namespace, t.serviceAccount, t.audiences, t.ttl)
	if err != nil {
		return fmt.Errorf("token of ServiceAccount %s/%s: %w", t.namespace, t.serviceAccount, err)
	}
	return proc.WriteFile(t.path, []byte(tok))
}

// writeVolumes writes the container's ConfigMap and projected token volumes under Root.
func (p *Pod) writeVolumes(ctx context.Context, spec corev1.PodSpec, c corev1.Container) error {
	ns := p.opts.Deployment.Namespace
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return fmt.Errorf("volume mount %s has no volume", m.Name)
		}
		v := spec.Volumes[i]
		dir := filepath.Join(p.opts.Root, m.MountPath)
		switch {
		case v.ConfigMap != nil:
			cm, err := p.opts.Env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for _, item := range v.ConfigMap.Items {
				if err := proc.WriteFile(filepath.Join(dir, item.Path), []byte(cm.Data[item.Key])); err != nil {
					return err
				}
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				sat := src.ServiceAccountToken
				if sat == nil {
					return fmt.Errorf("volume %s: only serviceAccountToken projections are run locally", v.Name)
				}
				ttl := tokenTTL
				if sat.ExpirationSeconds != nil {
					ttl = time.Duration(*sat.ExpirationSeconds) * time.Second
				}
				if err := p.addToken(ctx, tokenFile{path: filepath.Join(dir, sat.Path), namespace: ns,
					serviceAccount: spec.ServiceAccountName, audiences: []string{sat.Audience}, ttl: ttl}); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("volume %s: only ConfigMap and projected token volumes are run locally", v.Name)
		}
	}
	return nil
}

// writeAPIAccess writes the pod's API server token where every container finds it and a
// kubeconfig that reads it (client-go re-reads the file, so refreshed tokens are picked up),
// and returns the kubeconfig's path.
func (p *Pod) writeAPIAccess(ctx context.Context, spec corev1.PodSpec) (string, error) {
	sa := spec.ServiceAccountName
	if p.opts.APIServiceAccount != "" {
		sa = p.opts.APIServiceAccount
	}
	token := filepath.Join(p.opts.Root, apiTokenPath)
	if err := p.addToken(ctx, tokenFile{path: token, namespace: p.opts.Deployment.Namespace, serviceAccount: sa, ttl: tokenTTL}); err != nil {
		return "", err
	}
	e := p.opts.Env
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: e.APIServerURL, CertificateAuthorityData: e.CAData}
	cfg.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{TokenFile: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "serviceaccount"}
	cfg.CurrentContext = "local"
	path := filepath.Join(p.opts.Root, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// resolveEnv returns the container's environment as the kubelet resolves it; without Env,
// values from ConfigMaps and pod fields are left out.
func (p *Pod) resolveEnv(ctx context.Context, c corev1.Container, rewrite func(string) string) ([]string, error) {
	var out []string
	for _, e := range c.Env {
		val := e.Value
		if src := e.ValueFrom; src != nil {
			switch {
			case src.ResourceFieldRef != nil:
				v, err := ResourceFieldValue(c, src.ResourceFieldRef)
				if err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				val = v
			case p.opts.Env == nil:
				continue
			case src.ConfigMapKeyRef != nil:
				ns := p.opts.Deployment.Namespace
				cm, err := p.opts.Env.KubeClient.CoreV1().ConfigMaps(ns).Get(ctx, src.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
				v, ok := cm.Data[src.ConfigMapKeyRef.Key]
				if !ok {
					return nil, fmt.Errorf("env %s: ConfigMap %s has no key %s", e.Name, cm.Name, src.ConfigMapKeyRef.Key)
				}
				val = v
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.namespace":
				val = p.opts.Deployment.Namespace
			case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.name":
				val = p.opts.Name
			default:
				return nil, fmt.Errorf("env %s: value source not run locally", e.Name)
			}
		}
		out = append(out, e.Name+"="+rewrite(val))
	}
	return out, nil
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

// ServiceAccount returns the pod's ServiceAccount, as whom it reaches Vault.
func (p *Pod) ServiceAccount() string { return p.opts.Deployment.Spec.Template.Spec.ServiceAccountName }
