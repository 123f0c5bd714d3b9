package boundary

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// TestInstallIntoAnotherNamespace: the policies find the operators through the Namespace that
// carries clusterpki.dev/operator-namespace. An overlay that moves deploy/default elsewhere
// (kustomize's namespace:) must move that Namespace, its label, the ServiceAccounts and their
// bindings together, and every policy binding's parameter selector must pick that Namespace.
func TestInstallIntoAnotherNamespace(t *testing.T) {
	const elsewhere = "pki-elsewhere"
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(env.RepoRoot, "deploy", "default"))
	require.NoError(t, err)
	overlay := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - %s\n", elsewhere, rel)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644))
	out, err := kubectl(context.Background(), "kustomize", dir)
	require.NoError(t, err, out)

	var namespaces []*unstructured.Unstructured
	var bindings []admissionregistrationv1.ValidatingAdmissionPolicyBinding
	serviceAccounts := map[string]string{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		switch u.GetKind() {
		case "Namespace":
			namespaces = append(namespaces, u)
		case "ServiceAccount":
			serviceAccounts[u.GetName()] = u.GetNamespace()
		case "ValidatingAdmissionPolicyBinding":
			var b admissionregistrationv1.ValidatingAdmissionPolicyBinding
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b))
			bindings = append(bindings, b)
		}
	}
	require.Len(t, namespaces, 1, "deploy/default ships one Namespace")
	ns := namespaces[0]
	assert.Equal(t, elsewhere, ns.GetName(), "kustomize renames the operators' Namespace")
	assert.Equal(t, map[string]string{"ca-operator": elsewhere, "cert-operator": elsewhere}, serviceAccounts,
		"the ServiceAccounts the policies name (ca-operator, cert-operator) move with it, names unchanged")
	require.Len(t, bindings, 4, "four policies, four bindings")
	for _, b := range bindings {
		require.NotNil(t, b.Spec.ParamRef, b.Name)
		require.NotNil(t, b.Spec.ParamRef.Selector, b.Name)
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.ParamRef.Selector)
		require.NoError(t, err, b.Name)
		assert.True(t, sel.Matches(labels.Set(ns.GetLabels())), "binding %s selects the operators' Namespace by %s", b.Name, sel)
		assert.Empty(t, b.Spec.ParamRef.Name, "binding %s: a name would not follow the namespace", b.Name)
	}
}
