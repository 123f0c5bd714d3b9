package e2e

import (
	"archive/tar"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
)

// checkImage checks the pushed image of op (non-root user, entrypoint, CA certificates) and
// returns the path of the binary extracted from it, after checking that it prints its version.
func checkImage(ctx context.Context, t, scope *testing.T, reg, op string) string {
	ref, err := name.ParseReference(imageRef(reg, op))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("image %s is not in the registry: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	exe := "/usr/local/bin/" + op
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{exe}) || cf.OS != "linux" {
		t.Errorf("image %s: user %q, entrypoint %q, os %q; want 65532:65532, [%s], linux", ref, cf.Config.User, cf.Config.Entrypoint, cf.OS, exe)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(string(files["etc/passwd"]), ":65532:65532:") {
		t.Errorf("image %s: /etc/passwd has no user 65532", ref)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"]) {
		t.Errorf("image %s: no CA certificates at /etc/ssl/certs/ca-certificates.crt", ref)
	}
	bin, ok := files[strings.TrimPrefix(exe, "/")]
	if !ok {
		t.Fatalf("image %s has no %s", ref, exe)
	}
	path := filepath.Join(scope.TempDir(), op) // kept for the operators steps
	writeFile(t, path, bin)
	if err := osChmod(path); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, path, "--version")
	if want := op + " version " + version; !strings.Contains(out, want) {
		t.Errorf("%s --version printed %q, want %q", exe, out, want)
	}
	t.Logf("%s: %s", ref, strings.TrimSpace(out))
	return path
}

// verifyExamples checks every Secret issued for deploy/examples with openssl verify against
// the CA's ConfigMap, and checks the names, organizations, usages and key the Certificates
// and their roles ask for.
func verifyExamples(ctx context.Context, t *testing.T) {
	client, err := versioned.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	api := client.ClusterpkiV1alpha1()
	certs, err := api.Certificates(examplesNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs.Items) < 7 {
		t.Fatalf("%d Certificates in the examples, want at least 7", len(certs.Items))
	}
	for _, cert := range certs.Items {
		t.Run(cert.Name, func(t *testing.T) {
			ca, err := api.CertificateAuthorities(examplesNamespace).Get(ctx, cert.Spec.CARef.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cm, err := env.KubeClient.CoreV1().ConfigMaps(examplesNamespace).Get(ctx, ca.Name+"-ca", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the CA's ConfigMap: %v", err)
			}
			s, err := env.KubeClient.CoreV1().Secrets(examplesNamespace).Get(ctx, cert.Spec.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Data["ca.crt"]) != cm.Data["ca.crt"] {
				t.Errorf("Secret's ca.crt differs from ConfigMap %s's", cm.Name)
			}
			chain := pemCerts(t, s.Data["tls.crt"])
			if len(chain) < 2 {
				t.Fatalf("tls.crt holds %d certificates, want the leaf and the issuing CA", len(chain))
			}
			leaf := chain[0]
			role := findRoleSpec(t, ca, cert.Spec.Role)

			// openssl, with the usage the role grants.
			purpose := "sslclient"
			if slices.Contains(role.ExtKeyUsages, v1alpha1.ExtKeyUsage("ServerAuth")) {
				purpose = "sslserver"
			}
			dir := t.TempDir()
			caFile := filepath.Join(dir, "ca.crt")
			writeFile(t, caFile, []byte(cm.Data["ca.crt"]))
			leafFile := filepath.Join(dir, "leaf.crt")
			writeFile(t, leafFile, contract.EncodeCertificates(chain[:1]...))
			untrusted := filepath.Join(dir, "chain.crt")
			writeFile(t, untrusted, contract.EncodeCertificates(chain[1:]...))
			out := run(t, nil, "openssl", "verify", "-purpose", purpose, "-CAfile", caFile, "-untrusted", untrusted, leafFile)
			if !strings.Contains(out, leafFile+": OK") {
				t.Errorf("openssl verify: %s", out)
			}

			if _, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
				t.Errorf("tls.key does not match tls.crt: %v", err)
			}
			if leaf.Subject.CommonName != cert.Spec.CommonName {
				t.Errorf("common name %q, want %q", leaf.Subject.CommonName, cert.Spec.CommonName)
			}
			for _, n := range cert.Spec.AltNames {
				if !slices.Contains(leaf.DNSNames, n) {
					t.Errorf("DNS names %v lack %s", leaf.DNSNames, n)
				}
			}
			for _, ip := range cert.Spec.IPSANs {
				if !slices.ContainsFunc(leaf.IPAddresses, func(got net.IP) bool { return got.Equal(net.ParseIP(ip)) }) {
					t.Errorf("IP SANs %v lack %s", leaf.IPAddresses, ip)
				}
			}
			if !slices.Equal(leaf.Subject.Organization, role.Organizations) {
				t.Errorf("organizations %v, want %v (role %s)", leaf.Subject.Organization, role.Organizations, role.Name)
			}
			if got, want := extKeyUsages(leaf.ExtKeyUsage), role.ExtKeyUsages; !sameSet(got, want) {
				t.Errorf("extended key usages %v, want %v (role %s)", got, want, role.Name)
			}
			if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("key usage %b lacks digitalSignature", leaf.KeyUsage)
			}
			if a := cert.Spec.PrivateKey.Algorithm; a == "RSA" {
				k, ok := leaf.PublicKey.(*rsa.PublicKey)
				if !ok || (cert.Spec.PrivateKey.Size != nil && k.N.BitLen() != int(*cert.Spec.PrivateKey.Size)) {
					t.Errorf("public key %T, want RSA of %v bits", leaf.PublicKey, cert.Spec.PrivateKey.Size)
				}
			}
		})
	}
}

func findRoleSpec(t *testing.T, ca *v1alpha1.CertificateAuthority, name string) v1alpha1.RoleSpec {
	t.Helper()
	for _, r := range ca.Spec.Roles {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("CertificateAuthority %s has no role %s", ca.Name, name)
	return v1alpha1.RoleSpec{}
}

func pemCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	certs, err := contract.ParseCertificates(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// extKeyUsages names usages as the API does.
func extKeyUsages(us []x509.ExtKeyUsage) []v1alpha1.ExtKeyUsage {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "ServerAuth", x509.ExtKeyUsageClientAuth: "ClientAuth",
		x509.ExtKeyUsageCodeSigning: "CodeSigning", x509.ExtKeyUsageEmailProtection: "EmailProtection",
		x509.ExtKeyUsageTimeStamping: "TimeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
	}
	var out []v1alpha1.ExtKeyUsage
	for _, u := range us {
		out = append(out, v1alpha1.ExtKeyUsage(names[u]))
	}
	return out
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
