package crd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/pkg/testenv"
)

var (
	caGVR   = schema.GroupVersionResource{Group: "clusterpki.dev", Version: "v1alpha1", Resource: "certificateauthorities"}
	certGVR = schema.GroupVersionResource{Group: "clusterpki.dev", Version: "v1alpha1", Resource: "certificates"}
)

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := env.KubeClient.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// object decodes a YAML manifest.
func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &u.Object))
	return u
}

const validCA = `
apiVersion: clusterpki.dev/v1alpha1
kind: CertificateAuthority
metadata: {name: ca}
spec:
  clusterID: c1
  root: {commonName: c1 root}
  roles: [{name: server, allowedDomains: [example.com]}]
`

const validCert = `
apiVersion: clusterpki.dev/v1alpha1
kind: Certificate
metadata: {name: cert}
spec:
  caRef: {name: ca}
  role: server
  secretName: cert-tls
  commonName: a.example.com
`

// withSpec returns a manifest whose spec fields are replaced by the given YAML.
func withSpec(t *testing.T, base, specPatch string) *unstructured.Unstructured {
	t.Helper()
	u := object(t, base)
	patch := map[string]any{}
	require.NoError(t, yaml.Unmarshal([]byte(specPatch), &patch))
	spec := u.Object["spec"].(map[string]any)
	for k, v := range patch {
		if v == nil {
			delete(spec, k)
		} else {
			spec[k] = v
		}
	}
	return u
}

func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	ns := namespace(t, "invalid")
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	tests := map[string]struct {
		base, spec string
		wantField  string // a fragment of the API server's message naming the field
	}{
		"a clusterID that is not a DNS label":            {validCA, `clusterID: Tenant_A`, "spec.clusterID"},
		"a clusterID longer than 40 characters":          {validCA, `clusterID: ` + strings.Repeat("a", 41), "spec.clusterID"},
		"a CA without a clusterID":                       {validCA, `clusterID: null`, "spec.clusterID"},
		"a root without a common name":                   {validCA, `root: {ttl: 8760h}`, "spec.root.commonName"},
		"a root ttl that is not a duration":              {validCA, `root: {commonName: r, ttl: 10y}`, "spec.root.ttl"},
		"an unknown root key type":                       {validCA, `root: {commonName: r, keyType: dsa}`, "spec.root.keyType"},
		"an RSA root of 1024 bits":                       {validCA, `root: {commonName: r, keyType: rsa, keyBits: 1024}`, "spec.root.keyBits"},
		"an EC root of 2048 bits":                        {validCA, `root: {commonName: r, keyType: ec, keyBits: 2048}`, "spec.root.keyBits"},
		"an ed25519 root with a key size":                {validCA, `root: {commonName: r, keyType: ed25519, keyBits: 256}`, "spec.root.keyBits"},
		"an issuing CA living as long as the root":       {validCA, `issuing: {ttl: 87600h}`, "spec.issuing.ttl"},
		"an issuing rotateBefore longer than its ttl":    {validCA, `issuing: {ttl: 100h, rotateBefore: 200h}`, "spec.issuing.rotateBefore"},
		"duplicate role names":                           {validCA, `roles: [{name: a}, {name: a}]`, "spec.roles"},
		"a role name that is not a DNS label":            {validCA, `roles: [{name: Server}]`, "spec.roles[0].name"},
		"an allowed domain that is not a hostname":       {validCA, `roles: [{name: a, allowedDomains: ["bad domain"]}]`, "spec.roles[0].allowedDomains[0]"},
		"an unknown key usage":                           {validCA, `roles: [{name: a, keyUsages: [Everything]}]`, "spec.roles[0].keyUsages[0]"},
		"an unknown extended key usage":                  {validCA, `roles: [{name: a, extKeyUsages: [WebAuth]}]`, "spec.roles[0].extKeyUsages[0]"},
		"a role maxTTL that is not a duration":           {validCA, `roles: [{name: a, maxTTL: forever}]`, "spec.roles[0].maxTTL"},
		"an unknown deletion policy":                     {validCA, `deletionPolicy: Destroy`, "spec.deletionPolicy"},
		"a certificate without any name":                 {validCert, `commonName: null`, "commonName"},
		"a DNS SAN with an underscore":                   {validCert, `altNames: [bad_name.example.com]`, "spec.altNames[0]"},
		"a DNS SAN with upper case":                      {validCert, `altNames: [A.example.com]`, "spec.altNames[0]"},
		"an IP SAN that is not an IP":                    {validCert, `ipSANs: [300.1.2.3]`, "spec.ipSANs[0]"},
		"an IP SAN that is a hostname":                   {validCert, `ipSANs: [localhost]`, "spec.ipSANs[0]"},
		"a URI SAN that is not a URI":                    {validCert, `uriSANs: ["not a uri"]`, "spec.uriSANs[0]"},
		"a ttl in days":                                  {validCert, `ttl: 30d`, "spec.ttl"},
		"renewBefore as long as the ttl":                 {validCert, `{ttl: 24h, renewBefore: 24h}`, "spec.renewBefore"},
		"renewBefore longer than the ttl":                {validCert, `{ttl: 1h, renewBefore: 2h}`, "spec.renewBefore"},
		"renewBefore and renewBeforePercentage together": {validCert, `{renewBefore: 1h, renewBeforePercentage: 20}`, "renewBeforePercentage"},
		"a renewBeforePercentage of 100":                 {validCert, `renewBeforePercentage: 100`, "spec.renewBeforePercentage"},
		"an unknown private key algorithm":               {validCert, `privateKey: {algorithm: DSA}`, "spec.privateKey.algorithm"},
		"an RSA key of 1024 bits":                        {validCert, `privateKey: {algorithm: RSA, size: 1024}`, "spec.privateKey.size"},
		"an ECDSA key of 521 bits":                       {validCert, `privateKey: {algorithm: ECDSA, size: 521}`, "spec.privateKey.size"},
		"an Ed25519 key with a size":                     {validCert, `privateKey: {algorithm: Ed25519, size: 256}`, "spec.privateKey.size"},
		"an unknown revocation policy":                   {validCert, `revocationPolicy: Sometimes`, "spec.revocationPolicy"},
		"a certificate without a caRef":                  {validCert, `caRef: null`, "spec.caRef"},
		"a secretName that is not a DNS subdomain":       {validCert, `secretName: My_Secret`, "spec.secretName"},
		"a role that is not a DNS label":                 {validCert, `role: "server role"`, "spec.role"},
		"a common name longer than 64 characters":        {validCert, `commonName: ` + strings.Repeat("a", 65), "spec.commonName"},
	}
	i := 0
	for name, tc := range tests {
		i++
		obj := withSpec(t, tc.base, tc.spec)
		obj.SetName(fmt.Sprintf("obj-%d", i))
		t.Run(name, func(t *testing.T) {
			gvr := caGVR
			if obj.GetKind() == "Certificate" {
				gvr = certGVR
			}
			_, err := client.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
			require.Error(t, err, "the API server accepted an invalid object")
			assert.Contains(t, err.Error(), tc.wantField)
		})
	}
}

func TestClusterIDIsImmutable(t *testing.T) {
	ns := namespace(t, "immutable")
	client := dynamic.NewForConfigOrDie(env.RESTConfig).Resource(caGVR).Namespace(ns)
	created, err := client.Create(context.Background(), object(t, validCA), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedField(created.Object, "c2", "spec", "clusterID"))
	_, err = client.Update(context.Background(), created, metav1.UpdateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.clusterID")
	assert.Contains(t, err.Error(), "immutable")
}

func TestDefaultsAreApplied(t *testing.T) {
	ns := namespace(t, "defaults")
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	ca, err := client.Resource(caGVR).Namespace(ns).Create(context.Background(), object(t, validCA), metav1.CreateOptions{})
	require.NoError(t, err)
	for path, want := range map[string]any{
		"spec.deletionPolicy": "Retain", "spec.root.ttl": "87600h", "spec.root.keyType": "ec",
		"spec.issuing.ttl": "43800h", "spec.roles[0].maxTTL": "8760h",
	} {
		assert.Equal(t, want, lookup(t, ca.Object, path), path)
	}
	cert, err := client.Resource(certGVR).Namespace(ns).Create(context.Background(), object(t, validCert), metav1.CreateOptions{})
	require.NoError(t, err)
	for path, want := range map[string]any{
		"spec.ttl": "720h", "spec.privateKey.algorithm": "ECDSA", "spec.revocationPolicy": "None",
	} {
		assert.Equal(t, want, lookup(t, cert.Object, path), path)
	}
}

// lookup reads a dotted path (with [0] for the first list item) from an object.
func lookup(t *testing.T, obj map[string]any, path string) any {
	t.Helper()
	var cur any = obj
	for _, part := range strings.Split(path, ".") {
		idx := strings.Index(part, "[0]")
		if idx >= 0 {
			part = part[:idx]
		}
		cur = cur.(map[string]any)[part]
		if idx >= 0 {
			cur = cur.([]any)[0]
		}
	}
	return cur
}

func TestExamplesAreAccepted(t *testing.T) {
	ns := namespace(t, "examples")
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "examples", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	count := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) == 0 {
				continue
			}
			gvr := caGVR
			if u.GetKind() == "Certificate" {
				gvr = certGVR
			}
			_, err := client.Resource(gvr).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
			require.NoError(t, err, "%s: %s", filepath.Base(f), u.GetName())
			count++
		}
	}
	assert.GreaterOrEqual(t, count, 8, "examples hold a CA and the certificates of one cluster")
}

// kubectl runs kubectl against the test API server.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

func TestKubectlExplainAndPrinterColumns(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl is a prerequisite of this project and was not found: %v", err)
	}
	explain := kubectl(t, "explain", "pkicert.spec")
	for _, field := range []string{"caRef", "secretName", "renewBefore", "revocationPolicy", "issuance profile"} {
		assert.Contains(t, explain, field)
	}
	assert.Contains(t, kubectl(t, "explain", "pkica.spec.clusterID"), "cannot change")

	ns := namespace(t, "columns")
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	_, err := client.Resource(caGVR).Namespace(ns).Create(context.Background(), object(t, validCA), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.Resource(certGVR).Namespace(ns).Create(context.Background(), object(t, validCert), metav1.CreateOptions{})
	require.NoError(t, err)
	out := kubectl(t, "get", "pkica,pkicert", "-n", ns)
	for _, col := range []string{"READY", "CLUSTER", "EXPIRES", "CA", "SECRET", "NOT AFTER", "AGE", "c1", "cert-tls"} {
		assert.Contains(t, out, col)
	}
	assert.Contains(t, kubectl(t, "get", "clusterpki", "-n", ns), "cert")
}
