// Package pki makes and reads the key material of a Certificate: private keys, CSRs and the
// PEM chains Vault returns and the Secret stores.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

// pemTypePrivateKey is the PEM block type of a PKCS#8 private key.
const pemTypePrivateKey = "PRIVATE KEY"

// KeySpec is a normalised private key description: Algorithm is never empty and Size is the
// curve or modulus size in bits (0 for Ed25519).
type KeySpec struct {
	Algorithm v1alpha1.KeyAlgorithm
	Size      int
}

// String returns the spec as e.g. "ECDSA-256" or "Ed25519".
func (s KeySpec) String() string {
	if s.Size == 0 {
		return string(s.Algorithm)
	}
	return fmt.Sprintf("%s-%d", s.Algorithm, s.Size)
}

// NormalizeKeySpec fills in the defaults of spec (ECDSA, 256 bits for ECDSA, 2048 for RSA) and
// rejects combinations the generator cannot make.
func NormalizeKeySpec(spec v1alpha1.PrivateKeySpec) (KeySpec, error) {
	algorithm := spec.Algorithm
	if algorithm == "" {
		algorithm = v1alpha1.KeyAlgorithmECDSA
	}
	size := 0
	if spec.Size != nil {
		size = int(*spec.Size)
	}
	switch algorithm {
	case v1alpha1.KeyAlgorithmECDSA:
		if size == 0 {
			size = 256
		}
		if size != 256 && size != 384 {
			return KeySpec{}, fmt.Errorf("ECDSA key size must be 256 or 384, not %d", size)
		}
	case v1alpha1.KeyAlgorithmRSA:
		if size == 0 {
			size = 2048
		}
		if size != 2048 && size != 3072 && size != 4096 {
			return KeySpec{}, fmt.Errorf("RSA key size must be 2048, 3072 or 4096, not %d", size)
		}
	case v1alpha1.KeyAlgorithmEd25519:
		if size != 0 {
			return KeySpec{}, fmt.Errorf("an Ed25519 key has no size, got %d", size)
		}
	default:
		return KeySpec{}, fmt.Errorf("unknown key algorithm %q", algorithm)
	}
	return KeySpec{Algorithm: algorithm, Size: size}, nil
}

// GenerateKey makes a new private key as spec describes.
func GenerateKey(spec KeySpec) (crypto.Signer, error) {
	switch spec.Algorithm {
	case v1alpha1.KeyAlgorithmECDSA:
		curve := elliptic.P256()
		if spec.Size == 384 {
			curve = elliptic.P384()
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case v1alpha1.KeyAlgorithmRSA:
		return rsa.GenerateKey(rand.Reader, spec.Size)
	case v1alpha1.KeyAlgorithmEd25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", spec.Algorithm)
	}
}

// KeySpecOf returns the spec that describes key.
func KeySpecOf(key crypto.PublicKey) (KeySpec, error) {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return KeySpec{Algorithm: v1alpha1.KeyAlgorithmECDSA, Size: k.Curve.Params().BitSize}, nil
	case *rsa.PublicKey:
		return KeySpec{Algorithm: v1alpha1.KeyAlgorithmRSA, Size: k.N.BitLen()}, nil
	case ed25519.PublicKey:
		return KeySpec{Algorithm: v1alpha1.KeyAlgorithmEd25519}, nil
	default:
		return KeySpec{}, fmt.Errorf("unsupported public key type %T", key)
	}
}

// EncodePrivateKey returns key as a PKCS#8 PEM block.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der}), nil
}

// ParsePrivateKey reads the first PEM block of data as a PKCS#8 private key (or, for keys
// written by other tools, PKCS#1 RSA or SEC 1 EC).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in private key data")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

// PublicKeysEqual reports whether a and b are the same public key.
func PublicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if ea, ok := a.(equaler); ok {
		return ea.Equal(b)
	}
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}
