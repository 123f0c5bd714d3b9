package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const finalizer = "clusterpki.dev/vault"

// secret builds a Secret at resourceVersion 7 with the given finalizers.
func secret(finalizers ...string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "web", ResourceVersion: "7", Finalizers: finalizers,
	}}
}

// recordPatch returns a PatchFunc that keeps what it was sent in *got.
func recordPatch(got *[]string) PatchFunc {
	return func(_ context.Context, data []byte) error {
		*got = append(*got, string(data))
		return nil
	}
}

func TestAddFinalizer(t *testing.T) {
	tests := map[string]struct {
		obj         *corev1.Secret
		wantPatches []string // nil: no patch sent
	}{
		"a missing finalizer is appended, guarded by resourceVersion": {
			obj:         secret("other"),
			wantPatches: []string{`{"metadata":{"finalizers":["other","clusterpki.dev/vault"],"resourceVersion":"7"}}`},
		},
		"a present finalizer sends no patch": {
			obj: secret(finalizer),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			require.NoError(t, AddFinalizer(context.Background(), tc.obj, finalizer, recordPatch(&got)))
			assert.Equal(t, tc.wantPatches, got)
		})
	}
}

func TestRemoveFinalizer(t *testing.T) {
	tests := map[string]struct {
		obj         *corev1.Secret
		wantPatches []string // nil: no patch sent
	}{
		"the last finalizer leaves an empty list": {
			obj:         secret(finalizer),
			wantPatches: []string{`{"metadata":{"finalizers":[],"resourceVersion":"7"}}`},
		},
		"other finalizers are kept": {
			obj:         secret("a", finalizer, "b"),
			wantPatches: []string{`{"metadata":{"finalizers":["a","b"],"resourceVersion":"7"}}`},
		},
		"an absent finalizer sends no patch": {
			obj: secret("other"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			before := append([]string(nil), tc.obj.Finalizers...)
			require.NoError(t, RemoveFinalizer(context.Background(), tc.obj, finalizer, recordPatch(&got)))
			assert.Equal(t, tc.wantPatches, got)
			assert.Equal(t, before, tc.obj.Finalizers, "the cached object must not be changed")
		})
	}
}

func TestFinalizerPatchErrorsAreWrapped(t *testing.T) {
	err := AddFinalizer(context.Background(), secret(), finalizer, func(context.Context, []byte) error {
		return errors.New("conflict")
	})
	assert.EqualError(t, err, "add finalizer clusterpki.dev/vault to team-a/web: conflict")
}

func TestRESTConfigFromKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))

	cfg, err := RESTConfig(path, 200, 400)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", cfg.Host)
	assert.Equal(t, float32(200), cfg.QPS)
	assert.Equal(t, 400, cfg.Burst)
}
