package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// shipped is what an operator's shipped Deployment (deploy/<name>/deployment.yaml) gives its
// container: the command-line arguments and environment the bench runs the operator with,
// and the memory limit its resident set is measured against.
type shipped struct {
	// Args are the container's args without those about addresses and auth, which the bench
	// supplies for its own control plane and Vault (see replacedFlags).
	Args []string
	// Env are the container's variables that hold a value or take one from the container's
	// resources (GOMEMLIMIT), resolved as the kubelet would; variables read from the
	// clusterpki-vault ConfigMap (addresses) and the pod (its namespace) are left out.
	Env []string
	// MemoryLimitBytes is the container's memory limit (0 when it has none).
	MemoryLimitBytes int64
	// Path is the manifest read.
	Path string
}

// replacedFlags are the Deployment flags the bench replaces: addresses and auth (the bench's
// Vault takes a token, not a ServiceAccount login) and leader election, which a single
// replica does not need and which, after a SIGKILL, would add the Lease's 15 s expiry to the
// restart figure (that is Kubernetes', not the operator's).
var replacedFlags = []string{"metrics-addr", "vault-auth", "vault-kubernetes-role", "vault-kubernetes-token-file", "leader-elect"}

// readShipped reads deploy/<name>/deployment.yaml under root.
func readShipped(root, name string) (shipped, error) {
	path := filepath.Join(root, "deploy", name, "deployment.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return shipped{}, err
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(data, &d); err != nil {
		return shipped{}, fmt.Errorf("%s: %w", path, err)
	}
	var c *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			c = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		return shipped{}, fmt.Errorf("%s: no container %q", path, name)
	}
	s := shipped{Path: path}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		s.MemoryLimitBytes = q.Value()
	}
	for _, a := range c.Args {
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		replaced := false
		for _, r := range replacedFlags {
			replaced = replaced || flag == r
		}
		if !replaced {
			s.Args = append(s.Args, a)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			s.Env = append(s.Env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil:
			ref := e.ValueFrom.ResourceFieldRef
			if ref.Resource != "limits.memory" {
				return shipped{}, fmt.Errorf("%s: env %s: the bench resolves only limits.memory, not %s", path, e.Name, ref.Resource)
			}
			if s.MemoryLimitBytes == 0 {
				return shipped{}, fmt.Errorf("%s: env %s refers to a memory limit the container does not set", path, e.Name)
			}
			divisor := int64(1)
			if !ref.Divisor.IsZero() {
				divisor = ref.Divisor.Value()
			}
			// The kubelet rounds up: ceil(limit / divisor).
			s.Env = append(s.Env, fmt.Sprintf("%s=%d", e.Name, (s.MemoryLimitBytes+divisor-1)/divisor))
		}
	}
	return s, nil
}
