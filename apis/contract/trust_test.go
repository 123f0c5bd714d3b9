package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// testRoot returns a self-signed CA named cn, and its key.
func testRoot(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// crossSign returns child's certificate (same subject and key) signed by parent.
func crossSign(t *testing.T, child, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	tmpl := *child
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano() + 1)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, child.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestTrustBundle(t *testing.T) {
	oldRoot, oldKey := testRoot(t, "r")
	newRoot, _ := testRoot(t, "r")
	foreign, _ := testRoot(t, "r")
	cross := crossSign(t, newRoot, oldRoot, oldKey)
	rotating := func(bundle ...*x509.Certificate) *v1alpha1.CertificateAuthority {
		ca := &v1alpha1.CertificateAuthority{}
		ca.Status.Root = CertificateStatus("", oldRoot)
		ca.Status.RootRotation = &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationTrusting,
			OldRoot: CertificateStatus("", oldRoot), NewRoot: CertificateStatus("", newRoot)}
		ca.Status.TrustBundle = string(EncodeCertificates(bundle...))
		return ca
	}
	tests := map[string]struct {
		ca      *v1alpha1.CertificateAuthority
		want    []*x509.Certificate
		wantErr string
	}{
		"no bundle published: none, no error":         {ca: &v1alpha1.CertificateAuthority{}},
		"the old and the new root during a rotation":  {ca: rotating(oldRoot, newRoot), want: []*x509.Certificate{oldRoot, newRoot}},
		"a root that status does not name is refused": {ca: rotating(oldRoot, foreign), wantErr: "neither status.root nor a root of status.rootRotation"},
		"a bundle without status.root is refused":     {ca: rotating(newRoot), wantErr: "does not hold status.root"},
		"a cross-signed certificate is not a root": {ca: func() *v1alpha1.CertificateAuthority {
			ca := rotating(oldRoot, cross)
			ca.Status.RootRotation.NewRoot = CertificateStatus("", cross)
			return ca
		}(), wantErr: "not a self-signed CA"},
		"garbage is refused": {ca: func() *v1alpha1.CertificateAuthority {
			ca := rotating()
			ca.Status.TrustBundle = "not PEM"
			return ca
		}(), wantErr: "no PEM certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := TrustBundle(tc.ca)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("TrustBundle() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TrustBundle() error = %v", err)
			}
			if !SameTrust(got, tc.want) || len(got) != len(tc.want) {
				t.Errorf("TrustBundle() = %v, want %v", Fingerprints(got), Fingerprints(tc.want))
			}
		})
	}
}

func TestChainRootsSplitsAChainWithACrossSignedRoot(t *testing.T) {
	oldRoot, oldKey := testRoot(t, "r")
	newRoot, newKey := testRoot(t, "r")
	cross := crossSign(t, newRoot, oldRoot, oldKey)
	issuing, _ := testRoot(t, "issuing")
	issuing = crossSign(t, issuing, newRoot, newKey) // an issuing CA signed by the new root
	// Vault's ca_chain of a leaf during a rotation: issuing CA, cross, new root, old root.
	inter, roots := ChainRoots([]*x509.Certificate{issuing, cross, newRoot, oldRoot})
	if len(inter) != 2 || inter[0] != issuing || inter[1] != cross {
		t.Errorf("intermediates = %v, want the issuing CA then the cross-signed root", Fingerprints(inter))
	}
	if !SameTrust(roots, []*x509.Certificate{oldRoot, newRoot}) {
		t.Errorf("roots = %v, want the old and the new root", Fingerprints(roots))
	}
	if IsSelfSigned(cross) {
		t.Error("a cross-signed root (same subject, other signer) counts as self-signed")
	}
}
