package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// TestProberVerifies: the prober verifies the server's chain against its kubeconfig's CA alone
// and counts anything but the namespaces as a failure, so a probe that succeeds proves the
// trust it names. A client that trusts only the old root accepts a leaf of the new root
// through the cross-signed root, and refuses it without.
func TestProberVerifies(t *testing.T) {
	pki := newTestRotation(t)
	before, after := pki.secrets(t, false), pki.secrets(t, true)
	serving, _ := apiServerSecrets(0)
	withoutCross := pki.secrets(t, true)
	for _, s := range withoutCross {
		chain := mustParsePEM(t, s.Data["tls.crt"])
		s.Data["tls.crt"] = append(append([]byte{}, pemOf(chain[0])...), pki.int2.pem...)
	}
	tests := map[string]struct {
		server, client map[string]*corev1.Secret
		trust          *testPair // the prober's CA
		answer         string
		wantErr        string // "" = answered
	}{
		"a leaf of the old root, trusting the old root": {
			server: before, client: before, trust: pki.oldRoot, answer: `{"items":[{"metadata":{"name":"kube-system"}}]}`,
		},
		"a leaf of the new root with the cross, trusting the old root only": {
			server: after, client: after, trust: pki.oldRoot, answer: `{"items":[{"metadata":{"name":"kube-system"}}]}`,
		},
		"a leaf of the new root without the cross, trusting the old root only": {
			server: withoutCross, client: after, trust: pki.oldRoot, answer: `{"items":[{"metadata":{"name":"kube-system"}}]}`,
			wantErr: "certificate signed by unknown authority",
		},
		"a leaf of the old root, trusting the new root only": {
			server: before, client: after, trust: pki.newRoot, answer: `{"items":[{"metadata":{"name":"kube-system"}}]}`,
			wantErr: "certificate signed by unknown authority",
		},
		"a leaf of the new root, trusting the new root only": {
			server: after, client: after, trust: pki.newRoot, answer: `{"items":[{"metadata":{"name":"kube-system"}}]}`,
		},
		"an answer without the namespaces": {
			server: before, client: before, trust: pki.oldRoot, answer: `{"items":[]}`,
			wantErr: "lists no namespace kube-system",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pair, err := tls.X509KeyPair(tc.server[serving].Data["tls.crt"], tc.server[serving].Data["tls.key"])
			if err != nil {
				t.Fatal(err)
			}
			clients := x509.NewCertPool()
			clients.AddCert(pki.oldRoot.cert)
			clients.AddCert(pki.newRoot.cert)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/namespaces" || len(r.TLS.PeerCertificates) == 0 {
					http.Error(w, "forbidden", http.StatusForbidden)
					return
				}
				_, _ = w.Write([]byte(tc.answer))
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert}
			srv.StartTLS()
			defer srv.Close()

			dir := t.TempDir()
			g := &guest{dir: dir, trust: tc.trust.pem}
			if err := g.writeFiles(dir, []string{secretAdmin}, tc.client); err != nil {
				t.Fatal(err)
			}
			kubeconfig := filepath.Join(dir, "kubeconfig")
			if err := writeCertKubeconfig(kubeconfig, srv.URL, filepath.Join(dir, "ca.crt"),
				filepath.Join(dir, secretAdmin+".crt"), filepath.Join(dir, secretAdmin+".key")); err != nil {
				t.Fatal(err)
			}
			p := &prober{kubeconfig: kubeconfig, filesMu: &sync.RWMutex{}}
			trust, err := p.probe(t.Context())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe: %v, want an error saying %q", err, tc.wantErr)
			case tc.wantErr == "":
				if want, _ := trustID(tc.trust.pem); trust != want {
					t.Errorf("probe trusted %s, want %s", trust, want)
				}
			}
		})
	}
}

func mustParsePEM(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	certs, err := contract.ParseCertificates(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
