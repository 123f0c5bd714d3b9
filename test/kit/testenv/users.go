package testenv

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
)

// UserConfig returns a rest.Config for the API server that authenticates as user, a member of
// groups, with a new client certificate signed by the CA the API server trusts for clients: a
// person as the API server sees one, with no rights until RBAC grants them.
func (e *Env) UserConfig(user string, groups ...string) (*rest.Config, error) {
	ca, err := e.clientCA()
	if err != nil {
		return nil, err
	}
	kp, err := newClient(ca, user, groups...)
	if err != nil {
		return nil, fmt.Errorf("testenv: client certificate for %s: %w", user, err)
	}
	return &rest.Config{
		Host: e.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: e.CAData, CertData: kp.certPEM, KeyData: kp.keyPEM,
		},
		QPS: e.RESTConfig.QPS, Burst: e.RESTConfig.Burst,
	}, nil
}

// clientCA reads back the CA that startAPIServer wrote to Dir/pki and passed to
// kube-apiserver as --client-ca-file.
func (e *Env) clientCA() (*keyPair, error) {
	certPEM, err := os.ReadFile(filepath.Join(e.Dir, "pki", "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("testenv: client CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(e.Dir, "pki", "ca.key"))
	if err != nil {
		return nil, fmt.Errorf("testenv: client CA: %w", err)
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, errors.New("testenv: client CA: no PEM block in ca.crt or ca.key")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("testenv: client CA certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("testenv: client CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("testenv: client CA key of type %T cannot sign", key)
	}
	return &keyPair{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}
