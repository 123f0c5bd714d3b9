package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/testenv"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// TestBootFromPKI boots the second etcd and kube-apiserver of the proof from a two-level PKI
// shaped like clusterpki's (root → issuing CA → leaves, each tls.crt carrying leaf and issuing
// CA, the root alone as trust anchor), without the operators: it checks the flags of the proof
// against the real programs in seconds.
func TestBootFromPKI(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "proof", "pki")
	writeTestPKI(t, pki)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &demo{opts: options{dir: dir}, root: root, out: &out, procs: newProcGroup(filepath.Join(dir, "pids"))}
	defer d.procs.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := d.bootFromPKI(ctx, pki)
	if err != nil {
		t.Fatal(err)
	}
	d.printProof(res)
	t.Log(out.String())
	for _, want := range []string{"default", "kube-system", SuccessMarker} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if res.whoami != "" && !strings.Contains(res.whoami, "system:masters") {
		t.Errorf("kubectl auth whoami: %s, want group system:masters", res.whoami)
	}
}

type testPair struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newTestPair(t *testing.T, tmpl *x509.Certificate, parent *testPair, rsaKey bool) *testPair {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if tmpl.IsCA {
		tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testPair{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// writeTestPKI writes into dir what proof writes from the Secrets and the CA's ConfigMap.
func writeTestPKI(t *testing.T, dir string) {
	rootCA := newTestPair(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test root"}, IsCA: true}, nil, false)
	issuing := newTestPair(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test issuing"}, IsCA: true}, rootCA, false)
	write := func(path string, data []byte) {
		if err := proc.WriteFile(path, data); err != nil {
			t.Fatal(err)
		}
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	masters := []string{"system:masters"}
	for _, l := range []struct {
		secret, cn string
		orgs       []string
		usages     []x509.ExtKeyUsage
		san, rsa   bool
	}{
		{secretAPIServer, "kube-apiserver", nil, server, true, false},
		{secretEtcdServer, "etcd", nil, server, true, false},
		{secretEtcdPeer, "etcd", nil, append(server, client...), true, false},
		{secretEtcdClient, "kube-apiserver-etcd-client", nil, client, false, false},
		{secretKubeletClient, "kube-apiserver-kubelet-client", masters, client, false, false},
		{secretAdmin, "tenant-a-admin", masters, client, false, false},
		{secretSASigner, "service-account-signer", nil, client, false, true},
	} {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: l.cn, Organization: l.orgs}, ExtKeyUsage: l.usages}
		if l.san {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, ips
		}
		p := newTestPair(t, tmpl, issuing, l.rsa)
		der, err := x509.MarshalPKCS8PrivateKey(p.key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		write(filepath.Join(dir, l.secret+".crt"), append(append([]byte{}, p.pem...), issuing.pem...))
		write(filepath.Join(dir, l.secret+".key"), keyPEM)
		if l.secret == secretSASigner {
			pub, err := publicKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			write(filepath.Join(dir, "service-account.pub"), pub)
		}
	}
	write(filepath.Join(dir, "ca.crt"), rootCA.pem)
}
