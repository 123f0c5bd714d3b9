package crd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// foreignKind is a CRD of another project that clusters run beside clusterpki.
type foreignKind struct {
	group, kind, plural string
	shortNames          []string
	cluster             bool // cluster-scoped
}

// certManagerKinds are cert-manager's kinds with their short names (and the singular names and
// abbreviations users type for issuers), as a cluster that runs cert-manager serves them.
var certManagerKinds = []foreignKind{
	{group: "cert-manager.io", kind: "Certificate", plural: "certificates", shortNames: []string{"cert", "certs"}},
	{group: "cert-manager.io", kind: "CertificateRequest", plural: "certificaterequests", shortNames: []string{"cr", "crs"}},
	{group: "cert-manager.io", kind: "Issuer", plural: "issuers", shortNames: []string{"iss"}},
	{group: "cert-manager.io", kind: "ClusterIssuer", plural: "clusterissuers", shortNames: []string{"ciss", "ci"}, cluster: true},
	{group: "acme.cert-manager.io", kind: "Order", plural: "orders"},
	{group: "acme.cert-manager.io", kind: "Challenge", plural: "challenges"},
}

// ourNames are the names kubectl resolves to clusterpki's kinds in a cluster without
// cert-manager: plural, singular, short names and the category.
var ourNames = map[string]string{
	"certificateauthorities": "certificateauthority.clusterpki.dev",
	"certificateauthority":   "certificateauthority.clusterpki.dev",
	"pkica":                  "certificateauthority.clusterpki.dev",
	"pkicas":                 "certificateauthority.clusterpki.dev",
	"certificates":           "certificate.clusterpki.dev",
	"certificate":            "certificate.clusterpki.dev",
	"pkicert":                "certificate.clusterpki.dev",
	"pkicerts":               "certificate.clusterpki.dev",
	"clusterpki":             "",
}

// TestShortNamesBesideCertManager installs, beside clusterpki's CRDs, CRDs with cert-manager's
// groups, kinds and short names, and objects of the same names in one namespace. Then every
// README kubectl command about clusterpki's kinds must reach clusterpki's objects, and none of
// clusterpki's short names may be taken by another resource the API server serves.
func TestShortNamesBesideCertManager(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl is a prerequisite of this project and was not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	installForeignCRDs(t, ctx, certManagerKinds)
	ns := namespace(t, "beside-cert-manager")

	// The same names on both sides: README's examples name the CA tenant-a and a Certificate api.
	dyn := dynamic.NewForConfigOrDie(env.RESTConfig)
	ca := object(t, validCA)
	ca.SetName("tenant-a")
	_, err := dyn.Resource(caGVR).Namespace(ns).Create(ctx, ca, metav1.CreateOptions{})
	require.NoError(t, err)
	cert := object(t, validCert)
	cert.SetName("api")
	_, err = dyn.Resource(certGVR).Namespace(ns).Create(ctx, cert, metav1.CreateOptions{})
	require.NoError(t, err)
	for _, k := range certManagerKinds {
		if k.cluster {
			continue
		}
		for _, name := range []string{"tenant-a", "api"} {
			u := object(t, fmt.Sprintf("{apiVersion: %s/v1, kind: %s, metadata: {name: %s}, spec: {}}", k.group, k.kind, name))
			_, err := dyn.Resource(gvrOf(k)).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}

	// kubectl caches discovery per server; a cache of its own sees the CRDs just installed.
	cache := t.TempDir()
	run := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.Kubeconfig, "--cache-dir", cache}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	// The collision is real here: cert-manager's short name takes cert.
	out, _, err := run("get", "cert", "-n", ns, "-o", "name")
	require.NoError(t, err)
	assert.Equal(t, "certificate.cert-manager.io/api\ncertificate.cert-manager.io/tenant-a\n", out, "kubectl get cert should reach cert-manager's Certificates")

	// Every resource a README command names must reach clusterpki's kinds (or a built-in one,
	// such as namespaces), never cert-manager's.
	commands := readmeKubectlCommands(t)
	checked := 0
	for _, c := range commands {
		for _, token := range strings.Split(c.resource, ",") {
			want, ours := ourNames[token]
			if c.verb == "explain" {
				out, stderr, err := run("explain", token)
				require.NoError(t, err, "README line %d: %s\n%s", c.line, c.text, stderr)
				assert.NotRegexp(t, `GROUP:\s+(acme\.)?cert-manager\.io`, out, "README line %d: kubectl explain %s reaches cert-manager", c.line, token)
				if regexp.MustCompile(`GROUP:\s+clusterpki\.dev`).MatchString(out) {
					checked++
				}
				continue
			}
			out, stderr, err := run("get", token, "-n", ns, "-o", "name")
			require.NoError(t, err, "README line %d: %s\n%s", c.line, c.text, stderr)
			names := strings.Fields(out)
			assert.NotEmpty(t, names, "README line %d: kubectl get %s found nothing", c.line, token)
			reachesOurs := len(names) > 0
			for _, n := range names {
				kind, _, _ := strings.Cut(n, "/")
				assert.NotContains(t, kind, "cert-manager.io", "README line %d: %s reaches cert-manager's %s", c.line, c.text, n)
				if !strings.HasSuffix(kind, ".clusterpki.dev") {
					reachesOurs = false
				}
				if ours && want != "" {
					assert.Equal(t, want, kind, "README line %d: %s reaches %s", c.line, c.text, n)
				}
			}
			if reachesOurs {
				checked++
			}
			assert.NotContains(t, stderr, "lower priority", "README line %d: kubectl warns that %s is ambiguous", c.line, token)
		}
	}
	assert.GreaterOrEqual(t, checked, 8, "README's kubectl commands about clusterpki's kinds (found %d commands)", len(commands))

	// An annotate command as README writes it lands on clusterpki's object, not cert-manager's.
	_, stderr, err := run("annotate", "-n", ns, "pkicert", "api", "clusterpki.dev/renew=2026-01-01T00:00:00Z")
	require.NoError(t, err, stderr)
	ours, err := dyn.Resource(certGVR).Namespace(ns).Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "2026-01-01T00:00:00Z", ours.GetAnnotations()["clusterpki.dev/renew"])
	theirs, err := dyn.Resource(gvrOf(certManagerKinds[0])).Namespace(ns).Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, theirs.GetAnnotations(), "clusterpki.dev/renew")

	// No other resource the server serves (core kinds included) uses our short names.
	_, lists, err := env.KubeClient.Discovery().ServerGroupsAndResources()
	require.NoError(t, err)
	for _, l := range lists {
		if strings.HasPrefix(l.GroupVersion, "clusterpki.dev/") {
			continue
		}
		for _, r := range l.APIResources {
			for _, s := range []string{"pkica", "pkicas", "pkicert", "pkicerts"} {
				assert.False(t, r.Name == s || r.SingularName == s || slices.Contains(r.ShortNames, s),
					"%s %s also answers to %s", l.GroupVersion, r.Name, s)
			}
		}
	}
}

// readmeCommand is one kubectl command line of README.md about a resource.
type readmeCommand struct {
	line           int
	text           string
	verb, resource string // resource: the first argument after the verb, before any ".field"
}

// readmeKubectlCommands returns README's kubectl get, wait, describe, annotate, label, delete and
// explain commands, with the resource argument each names.
func readmeKubectlCommands(t *testing.T) []readmeCommand {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	defer f.Close()
	// kubectl commands appear in code blocks and inline code (`kubectl get ...`).
	re := regexp.MustCompile("kubectl ([^`#|]+)")
	verbs := []string{"get", "wait", "describe", "annotate", "label", "delete", "explain", "edit"}
	var out []readmeCommand
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
			args := strings.Fields(m[1])
			for i := 0; i < len(args); i++ {
				a := args[i]
				if a == "-n" || a == "--namespace" {
					i++
					continue
				}
				if strings.HasPrefix(a, "-") {
					continue
				}
				if !slices.Contains(verbs, a) {
					break
				}
				// The resource is the next argument that is not a flag.
				for j := i + 1; j < len(args); j++ {
					if args[j] == "-n" || args[j] == "--namespace" {
						j++
						continue
					}
					if strings.HasPrefix(args[j], "-") {
						continue
					}
					resource, _, _ := strings.Cut(args[j], ".")
					out = append(out, readmeCommand{line: n, text: strings.TrimSpace(m[0]), verb: a, resource: resource})
					break
				}
				break
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// installForeignCRDs creates minimal CRDs (any spec accepted) for kinds and removes them when the
// test ends, so that the other tests of this package see clusterpki's CRDs alone.
func installForeignCRDs(t *testing.T, ctx context.Context, kinds []foreignKind) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range kinds {
		scope := apiextensionsv1.NamespaceScoped
		if k.cluster {
			scope = apiextensionsv1.ClusterScoped
		}
		preserve := true
		crd := apiextensionsv1.CustomResourceDefinition{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + "." + k.group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: k.group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{
					Kind: k.kind, ListKind: k.kind + "List", Plural: k.plural, Singular: strings.ToLower(k.kind),
					ShortNames: k.shortNames, Categories: []string{"cert-manager"},
				},
				Scope: scope,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: &preserve,
					}},
				}},
			},
		}
		data, err := yaml.Marshal(crd)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, crd.Name+".yaml"), data, 0o644))
	}
	require.NoError(t, env.InstallCRDs(ctx, dir))
	client, err := apiextensions.NewForConfig(env.RESTConfig)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, k := range kinds {
			_ = client.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), k.plural+"."+k.group, metav1.DeleteOptions{})
		}
	})
}

// gvrOf returns the resource of k.
func gvrOf(k foreignKind) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.group, Version: "v1", Resource: k.plural}
}
