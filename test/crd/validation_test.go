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

	"github.com/clusterpki/clusterpki/test/kit/testenv"
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
		base, spec  string
		wantField   string // a fragment of the API server's message naming the field
		wantMessage string // a fragment saying why; empty: the field is enough
	}{
		"a clusterID that is not a DNS label":         {validCA, `clusterID: Tenant_A`, "spec.clusterID", ""},
		"a clusterID longer than 40 characters":       {validCA, `clusterID: ` + strings.Repeat("a", 41), "spec.clusterID", ""},
		"a CA without a clusterID":                    {validCA, `clusterID: null`, "spec.clusterID", ""},
		"a root without a common name":                {validCA, `root: {ttl: 8760h}`, "spec.root.commonName", ""},
		"a root ttl that is not a duration":           {validCA, `root: {commonName: r, ttl: 10y}`, "spec.root.ttl", ""},
		"an unknown root key type":                    {validCA, `root: {commonName: r, keyType: dsa}`, "spec.root.keyType", ""},
		"an RSA root of 1024 bits":                    {validCA, `root: {commonName: r, keyType: rsa, keyBits: 1024}`, "spec.root.keyBits", ""},
		"an EC root of 2048 bits":                     {validCA, `root: {commonName: r, keyType: ec, keyBits: 2048}`, "spec.root.keyBits", ""},
		"an ed25519 root with a key size":             {validCA, `root: {commonName: r, keyType: ed25519, keyBits: 256}`, "spec.root.keyBits", ""},
		"an issuing CA living as long as the root":    {validCA, `issuing: {ttl: 87600h}`, "spec.issuing.ttl", ""},
		"an issuing rotateBefore longer than its ttl": {validCA, `issuing: {ttl: 100h, rotateBefore: 200h}`, "spec.issuing.rotateBefore", ""},
		"duplicate role names":                        {validCA, `roles: [{name: a}, {name: a}]`, "spec.roles", ""},
		// Root rotation (spec.root.rotateBefore, rotationOverlap).
		"a root rotateBefore as long as its ttl":          {validCA, `root: {commonName: r, ttl: 100000h, rotateBefore: 100000h}`, "spec.root.rotateBefore", "rotateBefore must be shorter than ttl"},
		"a root rotateBefore that is not a duration":      {validCA, `root: {commonName: r, rotateBefore: 30d}`, "spec.root.rotateBefore", ""},
		"a rotationOverlap under a minute":                {validCA, `root: {commonName: r, rotationOverlap: 59s}`, "spec.root.rotationOverlap", "at least 1m"},
		"a root rotation starting after the issuing CA's": {validCA, `{root: {commonName: r, ttl: 1000h, rotateBefore: 100h}, issuing: {ttl: 500h, rotateBefore: 200h}}`, "spec.root.rotateBefore", "longer than spec.issuing.rotateBefore"},
		"a role name that is not a DNS label":             {validCA, `roles: [{name: Server}]`, "spec.roles[0].name", ""},
		"an allowed domain that is not a hostname":        {validCA, `roles: [{name: a, allowedDomains: ["bad domain"]}]`, "spec.roles[0].allowedDomains[0]", ""},
		"an unknown key usage":                            {validCA, `roles: [{name: a, keyUsages: [Everything]}]`, "spec.roles[0].keyUsages[0]", ""},
		"an unknown extended key usage":                   {validCA, `roles: [{name: a, extKeyUsages: [WebAuth]}]`, "spec.roles[0].extKeyUsages[0]", ""},
		"a role maxTTL that is not a duration":            {validCA, `roles: [{name: a, maxTTL: forever}]`, "spec.roles[0].maxTTL", ""},
		"an unknown deletion policy":                      {validCA, `deletionPolicy: Destroy`, "spec.deletionPolicy", ""},
		"a certificate without any name":                  {validCert, `commonName: null`, "commonName", ""},
		"a DNS SAN with an underscore":                    {validCert, `altNames: [bad_name.example.com]`, "spec.altNames[0]", ""},
		"a DNS SAN with upper case":                       {validCert, `altNames: [A.example.com]`, "spec.altNames[0]", ""},
		"an IP SAN that is not an IP":                     {validCert, `ipSANs: [300.1.2.3]`, "spec.ipSANs[0]", ""},
		"an IP SAN that is a hostname":                    {validCert, `ipSANs: [localhost]`, "spec.ipSANs[0]", ""},
		"a URI SAN that is not a URI":                     {validCert, `uriSANs: ["not a uri"]`, "spec.uriSANs[0]", ""},
		"a ttl in days":                                   {validCert, `ttl: 30d`, "spec.ttl", ""},
		"renewBefore as long as the ttl":                  {validCert, `{ttl: 24h, renewBefore: 24h}`, "spec.renewBefore", ""},
		"renewBefore longer than the ttl":                 {validCert, `{ttl: 1h, renewBefore: 2h}`, "spec.renewBefore", ""},
		"renewBefore and renewBeforePercentage together":  {validCert, `{renewBefore: 1h, renewBeforePercentage: 20}`, "renewBeforePercentage", ""},
		"a renewBeforePercentage of 100":                  {validCert, `renewBeforePercentage: 100`, "spec.renewBeforePercentage", ""},
		"an unknown private key algorithm":                {validCert, `privateKey: {algorithm: DSA}`, "spec.privateKey.algorithm", ""},
		"an RSA key of 1024 bits":                         {validCert, `privateKey: {algorithm: RSA, size: 1024}`, "spec.privateKey.size", ""},
		"an ECDSA key of 521 bits":                        {validCert, `privateKey: {algorithm: ECDSA, size: 521}`, "spec.privateKey.size", ""},
		"an Ed25519 key with a size":                      {validCert, `privateKey: {algorithm: Ed25519, size: 256}`, "spec.privateKey.size", ""},
		"an unknown revocation policy":                    {validCert, `revocationPolicy: Sometimes`, "spec.revocationPolicy", ""},
		"a certificate without a caRef":                   {validCert, `caRef: null`, "spec.caRef", ""},
		"a secretName that is not a DNS subdomain":        {validCert, `secretName: My_Secret`, "spec.secretName", ""},
		"a role that is not a DNS label":                  {validCert, `role: "server role"`, "spec.role", ""},
		"a common name longer than 64 characters":         {validCert, `commonName: ` + strings.Repeat("a", 65), "spec.commonName", ""},

		// Bounds that keep any accepted spec from making the cert-operator renew in a loop.
		"a ttl under the 10m floor":                {validCert, `ttl: 9m59s`, "spec.ttl", "ttl must be at least 10m"},
		"a ttl of seconds":                         {validCert, `ttl: 20s`, "spec.ttl", "Vault backdates notBefore by 30s"},
		"renewBefore over 90% of the ttl":          {validCert, `{ttl: 10m, renewBefore: 9m1s}`, "spec.renewBefore", "renewBefore must be at most 90% of ttl"},
		"renewBefore a second short of a 720h ttl": {validCert, `{ttl: 720h, renewBefore: 719h59m59s}`, "spec.renewBefore", "at most 90% of ttl"},
		"renewBefore over 90% of the default ttl":  {validCert, `{ttl: null, renewBefore: 649h}`, "spec.renewBefore", "at most 90% of ttl"},
		"a renewBeforePercentage of 91":            {validCert, `renewBeforePercentage: 91`, "spec.renewBeforePercentage", "less than or equal to 90"},
		"a renewBeforePercentage of 0":             {validCert, `renewBeforePercentage: 0`, "spec.renewBeforePercentage", "greater than or equal to 1"},

		// secretTemplate is checked as the API server checks the Secret's own metadata.
		"a label key with a space":                         {validCert, `secretTemplate: {labels: {"bad key": x}}`, "spec.secretTemplate.labels", `label key "bad key" is not a qualified name`},
		"a label key with an upper-case prefix":            {validCert, `secretTemplate: {labels: {"Example.com/x": x}}`, "spec.secretTemplate.labels", `label key "Example.com/x" is not a qualified name: prefix part`},
		"a label key with an empty name":                   {validCert, `secretTemplate: {labels: {"example.com/": x}}`, "spec.secretTemplate.labels", `label key "example.com/" is not a qualified name: name part`},
		"a label key with two slashes":                     {validCert, `secretTemplate: {labels: {"a/b/c": x}}`, "spec.secretTemplate.labels", `label key "a/b/c" is not a qualified name`},
		"a label key name of 64 characters":                {validCert, `secretTemplate: {labels: {"` + strings.Repeat("k", 64) + `": x}}`, "spec.secretTemplate.labels", "is not a qualified name: name part must be no more than 63"},
		"a label key prefix of 254 characters":             {validCert, `secretTemplate: {labels: {"` + strings.Repeat("p", 254) + `/k": x}}`, "spec.secretTemplate.labels", "is not a qualified name: prefix part must be no more than 253"},
		"a label value with a space":                       {validCert, `secretTemplate: {labels: {team: "web team"}}`, "spec.secretTemplate.labels", `the value of label "team" is not a label value`},
		"a label value ending in a dash":                   {validCert, `secretTemplate: {labels: {team: "web-"}}`, "spec.secretTemplate.labels", `the value of label "team" is not a label value`},
		"a label value of 64 characters":                   {validCert, `secretTemplate: {labels: {team: "` + strings.Repeat("v", 64) + `"}}`, "spec.secretTemplate.labels.team", "may not be more than 63"},
		"65 labels":                                        {validCert, `secretTemplate: {labels: {` + manyKeys(65) + `}}`, "spec.secretTemplate.labels", "must have at most 64 items"},
		"a label under clusterpki.dev/":                    {validCert, `secretTemplate: {labels: {"clusterpki.dev/certificate": other}}`, "spec.secretTemplate.labels", `label key "clusterpki.dev/certificate" is set by the cert-operator and cannot be templated`},
		"the managed-by label":                             {validCert, `secretTemplate: {labels: {"app.kubernetes.io/managed-by": helm}}`, "spec.secretTemplate.labels", `label key "app.kubernetes.io/managed-by" is set by the cert-operator`},
		"an annotation key with a space":                   {validCert, `secretTemplate: {annotations: {"bad key": x}}`, "spec.secretTemplate.annotations", `annotation key "bad key" is not a qualified name`},
		"an annotation key name of 64 characters":          {validCert, `secretTemplate: {annotations: {"` + strings.Repeat("k", 64) + `": x}}`, "spec.secretTemplate.annotations", "is not a qualified name: name part must be no more than 63"},
		"65 annotations":                                   {validCert, `secretTemplate: {annotations: {` + manyKeys(65) + `}}`, "spec.secretTemplate.annotations", "must have at most 64 items"},
		"annotations over 128 KiB in all":                  {validCert, `secretTemplate: {annotations: {a: "` + strings.Repeat("x", 64*1024) + `", b: "` + strings.Repeat("x", 64*1024) + `"}}`, "spec.secretTemplate.annotations", "at most 128 KiB (131072 bytes) of keys and values in all"},
		"an annotation under clusterpki.dev/":              {validCert, `secretTemplate: {annotations: {"clusterpki.dev/spec-hash": x}}`, "spec.secretTemplate.annotations", `annotation key "clusterpki.dev/spec-hash" is set by the cert-operator and cannot be templated`},
		"an annotation under clusterpki.dev/, capitalised": {validCert, `secretTemplate: {annotations: {"ClusterPKI.dev/renew-request": x}}`, "spec.secretTemplate.annotations", `annotation key "ClusterPKI.dev/renew-request" is set by the cert-operator`},
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
			assert.Contains(t, err.Error(), tc.wantMessage)
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
	// The root rotation's fields are documented where kubectl explain shows them.
	for field, want := range map[string][]string{
		"pkica.spec.root.rotateBefore":         {"root rotation", "clusterpki.dev/rotate-root"},
		"pkica.spec.root.rotationOverlap":      {"both the old and the new root", "least 1m"},
		"pkica.status.trustBundle":             {"during a root rotation", "ConfigMap's ca.crt"},
		"pkica.status.rootRotation":            {"phase", "newRoot", "crossSigned", "moved", "overlapEnd"},
		"pkica.status.rootRotation.phase":      {"Preparing", "Trusting", "Moving", "Overlap", "Retiring", "Completed"},
		"pkicert.status.rootFingerprintSHA256": {"issued under"},
		"pkicert.status.trustedRootsSHA256":    {"ca.crt"},
	} {
		out := kubectl(t, "explain", field)
		for _, w := range want {
			assert.Contains(t, out, w, "kubectl explain %s", field)
		}
	}

	ns := namespace(t, "columns")
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	created, err := client.Resource(caGVR).Namespace(ns).Create(context.Background(), object(t, validCA), metav1.CreateOptions{})
	require.NoError(t, err)
	// A root that ends in the future: a date column would print it as <invalid> (kubectl shows
	// dates as ages), so Expires prints the time itself.
	require.NoError(t, unstructured.SetNestedMap(created.Object, map[string]any{
		"serialNumber": "01", "fingerprintSHA256": strings.Repeat("ab", 32),
		"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2036-01-01T00:00:00Z",
	}, "status", "root"))
	_, err = client.Resource(caGVR).Namespace(ns).UpdateStatus(context.Background(), created, metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = client.Resource(certGVR).Namespace(ns).Create(context.Background(), object(t, validCert), metav1.CreateOptions{})
	require.NoError(t, err)
	out := kubectl(t, "get", "pkica,pkicert", "-n", ns)
	assert.Contains(t, out, "2036-01-01T00:00:00Z")
	assert.NotContains(t, out, "<invalid>")
	for _, col := range []string{"READY", "CLUSTER", "EXPIRES", "ROTATION", "CA", "SECRET", "NOT AFTER", "AGE", "c1", "cert-tls"} {
		assert.Contains(t, out, col)
	}
	assert.Contains(t, kubectl(t, "get", "clusterpki", "-n", ns), "cert")
}

// manyKeys returns n YAML map entries k0: v ... k<n-1>: v.
func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(keys, ", ")
}

// TestBoundsAcceptTheirLimits: every bound admits the value at its limit, so the floors are
// where the docs say and valid metadata is not refused.
func TestBoundsAcceptTheirLimits(t *testing.T) {
	ns := namespace(t, "limits")
	client := dynamic.NewForConfigOrDie(env.RESTConfig)
	tests := map[string]string{
		"the 10m ttl floor":                       `ttl: 10m`,
		"the 10m ttl floor in seconds":            `ttl: 600s`,
		"renewBefore exactly 90% of ttl":          `{ttl: 10m, renewBefore: 9m}`,
		"renewBefore 90% of the default ttl":      `{ttl: null, renewBefore: 648h}`,
		"a renewBeforePercentage of 90":           `renewBeforePercentage: 90`,
		"a renewBeforePercentage of 1":            `renewBeforePercentage: 1`,
		"labels as Kubernetes allows them":        `secretTemplate: {labels: {team: web, "example.com/tier": "", "a.b-c.example.com/My_Name.x": "Value_1.x-y", "` + strings.Repeat("k", 63) + `": "` + strings.Repeat("v", 63) + `"}}`,
		"64 labels":                               `secretTemplate: {labels: {` + manyKeys(64) + `}}`,
		"a label under another clusterpki domain": `secretTemplate: {labels: {"team.clusterpki.dev/x": web}}`,
		"annotations as Kubernetes allows them":   `secretTemplate: {annotations: {"Example.com/Note": "any text at all: spaces, / and ünïcode", "x": ""}}`,
		"annotations of 128 KiB in all":           `secretTemplate: {annotations: {a: "` + strings.Repeat("x", 64*1024-1) + `", b: "` + strings.Repeat("x", 64*1024-1) + `"}}`,
		"an annotation under another domain":      `secretTemplate: {annotations: {"cert-manager.io/issuer": x}}`,
	}
	i := 0
	for name, spec := range tests {
		i++
		obj := withSpec(t, validCert, spec)
		obj.SetName(fmt.Sprintf("limit-%d", i))
		t.Run(name, func(t *testing.T) {
			_, err := client.Resource(certGVR).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
			require.NoError(t, err)
		})
	}
}

// TestKubectlExplainStatesTheFloors: the bounds are in the field docs, where kubectl explain
// shows them.
func TestKubectlExplainStatesTheFloors(t *testing.T) {
	for field, want := range map[string][]string{
		"pkicert.spec.ttl":                        {"at least 10m", "Vault backdates"},
		"pkicert.spec.renewBefore":                {"At most 90% of ttl"},
		"pkicert.spec.renewBeforePercentage":      {"1 to 90"},
		"pkicert.spec.secretTemplate":             {"Keys under clusterpki.dev/ are refused"},
		"pkicert.spec.secretTemplate.labels":      {"qualified names", "at most 63", "app.kubernetes.io/managed-by"},
		"pkicert.spec.secretTemplate.annotations": {"qualified names", "128 KiB", "clusterpki.dev/"},
	} {
		out := strings.Join(strings.Fields(kubectl(t, "explain", field)), " ")
		for _, w := range want {
			assert.Contains(t, out, w, "kubectl explain %s", field)
		}
	}
}
