package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

func TestPlanFor(t *testing.T) {
	base := func(mod func(*v1alpha1.CertificateAuthoritySpec)) *v1alpha1.CertificateAuthoritySpec {
		s := &v1alpha1.CertificateAuthoritySpec{
			ClusterID: "c1",
			Root:      v1alpha1.RootCASpec{CommonName: "c1 root", TTL: "87600h", KeyType: "ec"},
			Issuing:   v1alpha1.IssuingCASpec{TTL: "8760h", KeyType: "rsa"},
			Roles:     []v1alpha1.RoleSpec{{Name: "server", AllowedDomains: []string{"*.svc"}}},
		}
		if mod != nil {
			mod(s)
		}
		return s
	}
	tests := map[string]struct {
		spec      *v1alpha1.CertificateAuthoritySpec
		wantErr   string // empty: no error
		wantCheck func(t *testing.T, p *Plan)
	}{
		"a valid spec resolves mounts, defaults and roles": {
			spec: base(nil),
			wantCheck: func(t *testing.T, p *Plan) {
				assert.Equal(t, Mounts{Root: "clusterpki/tenant-a/c1/root", Issuing: "clusterpki/tenant-a/c1/issuing"}, p.Mounts)
				assert.Equal(t, "c1 root Issuing CA", p.IssuingCN)
				assert.Equal(t, 8760*time.Hour/3, p.RotateBefore)
				assert.Equal(t, 256, p.RootKeyBits)
				assert.Equal(t, 2048, p.IssuingBits)
				require.Len(t, p.Roles, 1)
				assert.Equal(t, true, p.Roles[0].Params["allow_glob_domains"])
				assert.Equal(t, true, p.Roles[0].Params["no_store"])
				assert.Equal(t, int64(8760*3600), p.Roles[0].Params["max_ttl"])
			},
		},
		"an issuing ttl as long as the root's is refused naming the field": {
			spec:    base(func(s *v1alpha1.CertificateAuthoritySpec) { s.Issuing.TTL = "87600h" }),
			wantErr: "spec.issuing.ttl",
		},
		"a rotateBefore not shorter than the issuing ttl is refused": {
			spec:    base(func(s *v1alpha1.CertificateAuthoritySpec) { s.Issuing.RotateBefore = "8760h" }),
			wantErr: "spec.issuing.rotateBefore",
		},
		"an unparsable ttl is refused naming the field": {
			spec:    base(func(s *v1alpha1.CertificateAuthoritySpec) { s.Root.TTL = "ten years" }),
			wantErr: "spec.root.ttl",
		},
		"duplicate role names are refused": {
			spec:    base(func(s *v1alpha1.CertificateAuthoritySpec) { s.Roles = append(s.Roles, s.Roles[0]) }),
			wantErr: "spec.roles[1].name",
		},
		"explicit key bits are kept": {
			spec: base(func(s *v1alpha1.CertificateAuthoritySpec) { s.Root.KeyBits = ptr(int32(384)) }),
			wantCheck: func(t *testing.T, p *Plan) {
				assert.Equal(t, 384, p.RootKeyBits)
			},
		},
		"extended key usages map to Vault's flags": {
			spec: base(func(s *v1alpha1.CertificateAuthoritySpec) {
				s.Roles[0].ExtKeyUsages = []v1alpha1.ExtKeyUsage{"ClientAuth"}
			}),
			wantCheck: func(t *testing.T, p *Plan) {
				assert.Equal(t, false, p.Roles[0].Params["server_flag"])
				assert.Equal(t, true, p.Roles[0].Params["client_flag"])
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := PlanFor("clusterpki", "tenant-a", tc.spec)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.wantCheck(t, p)
		})
	}
}

func TestRoleDiff(t *testing.T) {
	tests := map[string]struct {
		want, have map[string]any
		wantDiff   []string // nil: role matches
	}{
		"Vault's own types compare equal to ours": {
			want: map[string]any{"max_ttl": int64(3600), "allowed_domains": []string{"b", "a"}, "allow_ip_sans": true, "organization": []string{}},
			have: map[string]any{"max_ttl": json.Number("3600"), "allowed_domains": []any{"a", "b"}, "allow_ip_sans": true, "organization": []any{""}},
		},
		"a changed ttl and a missing key are reported": {
			want:     map[string]any{"max_ttl": int64(3600), "no_store": true},
			have:     map[string]any{"max_ttl": json.Number("60")},
			wantDiff: []string{"max_ttl", "no_store"},
		},
		"keys Vault returns that we do not set are ignored": {
			want: map[string]any{"allow_localhost": false},
			have: map[string]any{"allow_localhost": false, "country": []any{}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.wantDiff, roleDiff(tc.want, tc.have))
		})
	}
}

func TestMountOwnership(t *testing.T) {
	tests := map[string]struct {
		description string
		want        MountOwnership
	}{
		"our own description":                 {ownerDescription("ns", "a", "uid-1"), OwnedByUs},
		"retained from an earlier object":     {ownerDescription("ns", "a", "uid-0"), Retained},
		"marked by an administrator (no uid)": {"clusterpki:certificateauthority=ns/a", Retained},
		"another object's description":        {ownerDescription("other", "a", "uid-1"), OwnedByOther},
		"same namespace, another name":        {ownerDescription("ns", "b", "uid-1"), OwnedByOther},
		"a name that only starts like ours":   {"clusterpki:certificateauthority=ns/ab uid=uid-1", OwnedByOther},
		"a mount someone made by hand":        {"team pki", NotManaged},
		"an empty description is foreign":     {"", NotManaged},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, _ := mountOwnership(tc.description, "ns", "a", "uid-1")
			assert.Equal(t, tc.want, got)
		})
	}
}

// testCA is an issuer with its private key, for tests that sign with made-up CAs.
type testCA struct {
	*issuer
	key *ecdsa.PrivateKey
}

// selfSigned makes a CA certificate valid from notBefore for lifetime, signed by parent (or itself).
func selfSigned(t *testing.T, notBefore time.Time, lifetime time.Duration, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(notBefore.UnixNano()), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(lifetime), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.Cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{issuer: &issuer{ID: "id", Cert: cert}, key: key}
}

func TestClassify(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://vault:8200/v1/sys/mounts/x",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	tests := map[string]struct {
		err           error
		wantReason    string
		wantTransient bool
	}{
		"a mount conflict waits for a person":    {&mountConflictError{"x"}, ReasonMountConflict, false},
		"a root at an old path waits for one":    {fmt.Errorf("converge: %w", &migrationRequiredError{"x"}), ReasonMigrationRequired, false},
		"403 is a permission problem":            {&vaultapi.ResponseError{StatusCode: 403}, ReasonPermissionDenied, true},
		"503 means Vault is unavailable":         {&vaultapi.ResponseError{StatusCode: 503}, ReasonVaultUnavailable, true},
		"a refused connection is unavailable":    {fmt.Errorf("vault read x: %w", refused), ReasonVaultUnavailable, true},
		"any other answer of Vault is its error": {&vaultapi.ResponseError{StatusCode: 400, Errors: []string{"bad"}}, ReasonVaultError, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reason, transient := classify(tc.err)
			assert.Equal(t, tc.wantReason, reason)
			assert.Equal(t, tc.wantTransient, transient)
		})
	}
}

func TestNeedsSync(t *testing.T) {
	base := func(mod func(*v1alpha1.CertificateAuthority)) *v1alpha1.CertificateAuthority {
		ca := &v1alpha1.CertificateAuthority{}
		ca.ResourceVersion, ca.Generation, ca.Finalizers = "1", 1, []string{Finalizer}
		ca.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
		if mod != nil {
			mod(ca)
		}
		return ca
	}
	tests := map[string]struct {
		newCA *v1alpha1.CertificateAuthority
		want  bool
	}{
		"a resync (same resourceVersion) is synced": {base(nil), true},
		"our own status write is not":               {base(func(ca *v1alpha1.CertificateAuthority) { ca.ResourceVersion = "2"; ca.Status.RootMount = "x" }), false},
		"a spec change is":                          {base(func(ca *v1alpha1.CertificateAuthority) { ca.ResourceVersion, ca.Generation = "2", 2 }), true},
		"a rotation annotation is": {base(func(ca *v1alpha1.CertificateAuthority) {
			ca.ResourceVersion, ca.Annotations = "2", map[string]string{v1alpha1.AnnotationRotateIssuer: "now"}
		}), true},
		"a removed finalizer is": {base(func(ca *v1alpha1.CertificateAuthority) { ca.ResourceVersion, ca.Finalizers = "2", nil }), true},
		"our own status write on a CA that retains its mounts (no finalizer) is not": {base(func(ca *v1alpha1.CertificateAuthority) {
			ca.ResourceVersion, ca.Status.RootMount, ca.Spec.DeletionPolicy, ca.Finalizers = "2", "x", v1alpha1.DeletionPolicyRetain, nil
		}), false},
		"a finalizer a CA that retains its mounts does not need is": {base(func(ca *v1alpha1.CertificateAuthority) {
			ca.ResourceVersion, ca.Spec.DeletionPolicy = "2", v1alpha1.DeletionPolicyRetain
		}), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, NeedsSync(base(nil), tc.newCA))
		})
	}
}
