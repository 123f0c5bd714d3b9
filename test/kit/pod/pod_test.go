package pod

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// manifest is a Deployment as deploy/ ships one, cut to what the runner reads.
const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: op
spec:
  template:
    spec:
      serviceAccountName: op
      containers:
        - name: op
          args:
            - --leader-elect=true
            - --metrics-addr=:8080
            - --vault-kubernetes-token-file=/var/run/secrets/clusterpki/vault/token
            - --log-format=json
          env:
            - name: CLUSTERPKI_VAULT_ADDR
              valueFrom:
                configMapKeyRef: {name: clusterpki-vault, key: vault-addr}
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef: {fieldPath: metadata.namespace}
            - name: GOMEMLIMIT
              valueFrom:
                resourceFieldRef: {resource: limits.memory}
            - name: GOGC
              value: "50"
            - name: TOKEN
              value: /var/run/secrets/clusterpki/vault/token
          resources:
            limits: {memory: 768Mi}
          volumeMounts:
            - name: vault-token
              mountPath: /var/run/secrets/clusterpki/vault
      volumes:
        - name: vault-token
          projected:
            sources:
              - serviceAccountToken: {audience: vault, path: token}
`

func TestNewWithoutCluster(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deployment.yaml")
	require.NoError(t, proc.WriteFile(path, []byte(manifest)))
	d, err := ReadDeployment(path)
	require.NoError(t, err)
	root := filepath.Join(dir, "root")
	p, err := New(context.Background(), Options{Deployment: d, Name: "op-0", Binary: "/bin/true", Root: root,
		LogPath: filepath.Join(dir, "op.log"), Drop: []string{"metrics-addr", "leader-elect"},
		Flags: []string{"--vault-auth=token"}, ExtraEnv: []string{"VAULT_TOKEN=t"}})
	require.NoError(t, err)

	assert.Equal(t, []string{"--vault-kubernetes-token-file=" + root + "/var/run/secrets/clusterpki/vault/token", "--log-format=json"},
		p.ContainerArgs, "dropped flags left out, paths under a volume mount moved under the root")
	assert.Equal(t, append(p.ContainerArgs, "--vault-auth=token", "--metrics-addr="+p.MetricsAddr), p.Args,
		"no --kubeconfig without a cluster")
	assert.Equal(t, []string{"GOMEMLIMIT=805306368", "GOGC=50", "TOKEN=" + root + "/var/run/secrets/clusterpki/vault/token"},
		p.ContainerEnv, "values from ConfigMaps and pod fields left out without a cluster; the limit resolved")
	assert.Equal(t, int64(768<<20), p.MemoryLimitBytes)
	assert.Contains(t, p.environ, "VAULT_TOKEN=t")
	assert.Contains(t, p.environ, "HOSTNAME=op-0")
}

func TestMountRewriter(t *testing.T) {
	rewrite := mountRewriter("/root", []corev1.VolumeMount{{MountPath: "/etc/clusterpki/vault/"}})
	tests := map[string]struct{ in, want string }{
		"a path outside every mount stays":     {in: "/etc/x", want: "/etc/x"},
		"the mount itself moves":               {in: "/etc/clusterpki/vault", want: "/root/etc/clusterpki/vault"},
		"a file under the mount moves":         {in: "--ca=/etc/clusterpki/vault/ca.crt", want: "--ca=/root/etc/clusterpki/vault/ca.crt"},
		"a longer name is not under the mount": {in: "/etc/clusterpki/vaultx", want: "/etc/clusterpki/vaultx"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, rewrite(tc.in)) })
	}
}
