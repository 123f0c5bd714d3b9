package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/testpki"
)

func size(n int32) *int32 { return &n }

func TestNormalizeKeySpec(t *testing.T) {
	tests := map[string]struct {
		spec    v1alpha1.PrivateKeySpec
		want    string // "" when an error is expected
		wantErr string
	}{
		"an empty spec is ECDSA P-256":    {want: "ECDSA-256"},
		"ECDSA P-384":                     {spec: v1alpha1.PrivateKeySpec{Algorithm: "ECDSA", Size: size(384)}, want: "ECDSA-384"},
		"RSA defaults to 2048 bits":       {spec: v1alpha1.PrivateKeySpec{Algorithm: "RSA"}, want: "RSA-2048"},
		"RSA 4096":                        {spec: v1alpha1.PrivateKeySpec{Algorithm: "RSA", Size: size(4096)}, want: "RSA-4096"},
		"Ed25519 has no size":             {spec: v1alpha1.PrivateKeySpec{Algorithm: "Ed25519"}, want: "Ed25519"},
		"an ECDSA size of 521 is refused": {spec: v1alpha1.PrivateKeySpec{Algorithm: "ECDSA", Size: size(521)}, wantErr: "ECDSA key size must be 256 or 384, not 521"},
		"an RSA size of 1024 is refused":  {spec: v1alpha1.PrivateKeySpec{Algorithm: "RSA", Size: size(1024)}, wantErr: "RSA key size must be 2048, 3072 or 4096, not 1024"},
		"Ed25519 with a size is refused":  {spec: v1alpha1.PrivateKeySpec{Algorithm: "Ed25519", Size: size(256)}, wantErr: "an Ed25519 key has no size, got 256"},
		"an unknown algorithm is refused": {spec: v1alpha1.PrivateKeySpec{Algorithm: "DSA"}, wantErr: `unknown key algorithm "DSA"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeKeySpec(tc.spec)
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.String())
		})
	}
}

func TestGenerateKeyRoundTrip(t *testing.T) {
	tests := map[string]struct {
		spec     KeySpec
		wantType any
	}{
		"ECDSA P-256": {spec: KeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA, Size: 256}, wantType: &ecdsa.PrivateKey{}},
		"ECDSA P-384": {spec: KeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA, Size: 384}, wantType: &ecdsa.PrivateKey{}},
		"RSA 2048":    {spec: KeySpec{Algorithm: v1alpha1.KeyAlgorithmRSA, Size: 2048}, wantType: &rsa.PrivateKey{}},
		"Ed25519":     {spec: KeySpec{Algorithm: v1alpha1.KeyAlgorithmEd25519}, wantType: ed25519.PrivateKey{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := GenerateKey(tc.spec)
			require.NoError(t, err)
			assert.IsType(t, tc.wantType, key)

			data, err := EncodePrivateKey(key)
			require.NoError(t, err)
			block, _ := pem.Decode(data)
			require.NotNil(t, block)
			assert.Equal(t, "PRIVATE KEY", block.Type, "keys are stored as PKCS#8")

			parsed, err := ParsePrivateKey(data)
			require.NoError(t, err)
			assert.True(t, PublicKeysEqual(key.Public(), parsed.Public()))
			got, err := KeySpecOf(parsed.Public())
			require.NoError(t, err)
			assert.Equal(t, tc.spec, got)

			csrPEM, err := CreateCSR(Subject{
				CommonName: "web.example.com", DNSNames: []string{"web.example.com"},
				IPs: []string{"10.0.0.1"}, URIs: []string{"spiffe://cluster.local/ns/a/sa/b"},
			}, key)
			require.NoError(t, err)
			block, _ = pem.Decode(csrPEM)
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			require.NoError(t, err)
			require.NoError(t, csr.CheckSignature())
			assert.Equal(t, "web.example.com", csr.Subject.CommonName)
			assert.Equal(t, "10.0.0.1", csr.IPAddresses[0].String())
			assert.Equal(t, "spiffe://cluster.local/ns/a/sa/b", csr.URIs[0].String())
		})
	}
}

func TestCreateCSRRejectsBadSANs(t *testing.T) {
	key, err := GenerateKey(KeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA, Size: 256})
	require.NoError(t, err)
	_, err = CreateCSR(Subject{IPs: []string{"not-an-ip"}}, key)
	assert.EqualError(t, err, `"not-an-ip" is not an IP address`)
}

func TestParsePrivateKeyRejectsGarbage(t *testing.T) {
	_, err := ParsePrivateKey([]byte("hello"))
	assert.EqualError(t, err, "no PEM block in private key data")
}

func TestVerifyChain(t *testing.T) {
	root := testpki.Root(t, "root")
	issuing := testpki.Intermediate(t, root, "issuing")
	leaf := testpki.Leaf(t, issuing, "web.example.com", nil, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))

	certs, err := contract.ParseCertificates(contract.EncodeCertificates(leaf.Cert, issuing.Cert))
	require.NoError(t, err)
	require.Len(t, certs, 2)
	assert.NoError(t, VerifyChain(certs[0], certs[1:], root.Cert))
	assert.Error(t, VerifyChain(certs[0], nil, root.Cert), "without the intermediate the leaf does not chain")
	assert.Error(t, VerifyChain(certs[0], certs[1:], testpki.Root(t, "other").Cert))

	expired := testpki.Leaf(t, issuing, "old.example.com", nil, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	assert.NoError(t, VerifyChain(expired.Cert, []*x509.Certificate{issuing.Cert}, root.Cert), "expiry is not a chain failure")
}
