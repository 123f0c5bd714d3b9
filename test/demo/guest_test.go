package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// testRotation is a root rotation made in the test, shaped as the operators make it: an old
// root signing issuing CA 1, a new root (same subject, its own key) signing issuing CA 2, and
// the new root cross-signed by the old one, which leaves issued under the new root carry after
// issuing CA 2.
type testRotation struct {
	oldRoot, newRoot, int1, int2 *testPair
	cross                        []byte // PEM
}

func newTestRotation(t *testing.T) *testRotation {
	t.Helper()
	subject := pkix.Name{CommonName: "test root", Organization: []string{"clusterpki"}}
	r := &testRotation{
		oldRoot: newTestPair(t, &x509.Certificate{Subject: subject, IsCA: true}, nil, false),
		newRoot: newTestPair(t, &x509.Certificate{Subject: subject, IsCA: true}, nil, false),
	}
	r.int1 = newTestPair(t, &x509.Certificate{Subject: pkix.Name{CommonName: "issuing 1"}, IsCA: true}, r.oldRoot, false)
	r.int2 = newTestPair(t, &x509.Certificate{Subject: pkix.Name{CommonName: "issuing 2"}, IsCA: true}, r.newRoot, false)
	// The cross-signed root: the new root's subject and key, the old root's signature.
	cross := *r.newRoot.cert
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	cross.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, &cross, r.oldRoot.cert, r.newRoot.key.Public(), r.oldRoot.key)
	if err != nil {
		t.Fatal(err)
	}
	r.cross = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return r
}

// secrets issues every Secret the guest cluster reads under issuing CA 1 (moved=false: tls.crt
// is leaf and issuing CA 1) or 2 (moved=true: leaf, issuing CA 2 and the cross-signed root).
func (r *testRotation) secrets(t *testing.T, moved bool) map[string]*corev1.Secret {
	t.Helper()
	issuer, chain := r.int1, r.int1.pem
	if moved {
		issuer, chain = r.int2, append(append([]byte{}, r.int2.pem...), r.cross...)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	masters := []string{"system:masters"}
	type leaf struct {
		cn     string
		orgs   []string
		usages []x509.ExtKeyUsage
		san    bool
	}
	leaves := map[string]leaf{
		secretKubeletClient: {"kube-apiserver-kubelet-client", masters, client, false},
		secretSASigner:      {"service-account-signer", nil, client, false},
		secretAdmin:         {"tenant-a-admin", masters, client, false},
		secretHealthClient:  {"kube-apiserver-etcd-client", nil, client, false},
	}
	for i := range guestEtcdMembers {
		s, p := etcdSecrets(i)
		leaves[s] = leaf{"etcd", nil, append(server, client...), true}
		leaves[p] = leaf{"etcd", nil, append(server, client...), true}
	}
	for i := range guestAPIServers {
		s, e := apiServerSecrets(i)
		leaves[s] = leaf{"kube-apiserver", nil, server, true}
		leaves[e] = leaf{"kube-apiserver-etcd-client", nil, client, false}
	}
	out := map[string]*corev1.Secret{}
	for name, l := range leaves {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: l.cn, Organization: l.orgs}, ExtKeyUsage: l.usages}
		if l.san {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, ips
		}
		p := newTestPair(t, tmpl, issuer, name == secretSASigner)
		der, err := x509.MarshalPKCS8PrivateKey(p.key)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{
			"tls.crt": append(append([]byte{}, p.pem...), chain...),
			"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		}}
	}
	return out
}

// TestGuestRoll rolls the guest cluster of --rotate-root through a root rotation made in the
// test, without the operators: it boots the 3 etcd members and 2 kube-apiservers on leaves of
// the old root, gives every component the bundle of both roots (one restart each), then the
// leaves re-issued under the new root (one restart each), then the new root alone as its trust
// (one restart each), while the prober, trusting the old root only, asks for the namespaces
// every 200ms; then the prober trusts the new root only.
// Not one request may fail, and every etcd member is healthy after every restart. It checks
// the roll itself against the real programs, so that TestRotateRoot only adds the operators.
func TestGuestRoll(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &demo{opts: options{dir: dir}, root: root, out: &out, procs: newProcGroup(filepath.Join(dir, "pids"))}
	defer d.procs.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	pki := newTestRotation(t)
	g, err := d.newGuest("tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	defer g.stop()
	g.trust = pki.oldRoot.pem
	before := pki.secrets(t, false)
	start := time.Now()
	if err := g.boot(ctx, before); err != nil {
		t.Fatal(err)
	}
	if err := g.startProber(ctx, before); err != nil {
		t.Fatal(err)
	}
	t.Logf("booted in %v", time.Since(start).Round(100*time.Millisecond))

	restarts := 0
	roll := func(current map[string]*corev1.Secret) {
		t.Helper()
		if err := g.refreshMonitor(current); err != nil {
			t.Fatal(err)
		}
		if err := g.refreshProberAdmin(current); err != nil {
			t.Fatal(err)
		}
		for {
			r, err := g.rollStep(ctx, current, "")
			if r != nil {
				restarts++
				t.Logf("restarted %s in %v (%s); etcd health %q", r.component, r.took.Round(100*time.Millisecond), r.why, r.etcdHealth)
				if countHealthy(r.etcdHealth) != guestEtcdMembers {
					t.Errorf("after restarting %s: etcd health %q", r.component, r.etcdHealth)
				}
			}
			if err != nil {
				for _, c := range g.components() {
					t.Logf("--- %s:\n%s", c.name, testenv.Tail(c.proc.LogPath, 20))
				}
				t.Fatal(err)
			}
			if r == nil {
				return
			}
		}
	}
	// Trusting: every component gets both roots.
	g.trust = append(append([]byte{}, pki.oldRoot.pem...), pki.newRoot.pem...)
	roll(before)
	// Moving: every Secret re-issued under the new root.
	after := pki.secrets(t, true)
	roll(after)
	// Completed: every component trusts the new root alone.
	g.trust = pki.newRoot.pem
	roll(after)
	if want := 3 * (guestEtcdMembers + guestAPIServers); restarts != want {
		t.Errorf("%d restarts, want %d: each component once for the bundle, once for its Secrets, once for the new root alone", restarts, want)
	}
	// After the rotation: the prober trusts the new root only.
	if err := g.setProberTrust(pki.newRoot.pem); err != nil {
		t.Fatal(err)
	}
	newTrust, _ := trustID(pki.newRoot.pem)
	if err := g.prober.waitSuccesses(ctx, newTrust, 5, time.Minute); err != nil {
		t.Error(err)
	}
	g.prober.stop()
	probes, failures, byTrust := g.prober.counts()
	oldTrust, _ := trustID(pki.oldRoot.pem)
	t.Logf("%d requests in %v, %d failed; by trust: old %d, new %d; forwarder: %v", probes, time.Since(start).Round(time.Second), len(failures), byTrust[oldTrust], byTrust[newTrust], func() []int { s, _ := g.fwd.stats(); return s }())
	for _, f := range failures {
		t.Errorf("request at %s failed: %v", f.at.Format("15:04:05.000"), f.err)
	}
	if byTrust[oldTrust] < 10 || byTrust[newTrust] < 5 {
		t.Errorf("successful requests by trust %v: want at least 10 trusting the old root only and 5 the new root only", byTrust)
	}
	if served, _ := g.fwd.stats(); len(served) != 2 || served[0] == 0 || served[1] == 0 {
		t.Errorf("connections per kube-apiserver %v: want both to have served", served)
	}
	if !strings.Contains(string(g.trust), "CERTIFICATE") {
		t.Fatal("no trust")
	}
}

// TestNextStale: the roll restarts, one at a time and etcd first, the component whose trust or
// own Secrets changed, and nothing for a Secret no component runs on.
func TestNextStale(t *testing.T) {
	pki := newTestRotation(t)
	before := pki.secrets(t, false)
	after := pki.secrets(t, true)
	bundle := append(append([]byte{}, pki.oldRoot.pem...), pki.newRoot.pem...)
	with := func(changed ...string) map[string]*corev1.Secret {
		out := map[string]*corev1.Secret{}
		for k, v := range before {
			out[k] = v
		}
		for _, name := range changed {
			out[name] = after[name]
		}
		return out
	}
	serving1, _ := apiServerSecrets(1)
	_, peer2 := etcdSecrets(2)
	tests := map[string]struct {
		trust   []byte
		current map[string]*corev1.Secret
		want    string // component; "" = none stale
		wantWhy string
	}{
		"every component runs on what is published": {
			trust: pki.oldRoot.pem, current: before,
		},
		"the trust gained the new root: the first etcd member first": {
			trust: bundle, current: before, want: "guest-etcd-0", wantWhy: "trust 1 → 2 root(s)",
		},
		"an etcd member's peer Secret re-issued: that member": {
			trust: pki.oldRoot.pem, current: with(peer2), want: "guest-etcd-2", wantWhy: "Secret " + peer2 + " re-issued",
		},
		"an API server's serving Secret re-issued: that API server": {
			trust: pki.oldRoot.pem, current: with(serving1), want: "guest-kube-apiserver-1", wantWhy: "Secret " + serving1 + " re-issued",
		},
		"the kubelet client both API servers share re-issued: the first one first": {
			trust: pki.oldRoot.pem, current: with(secretKubeletClient), want: "guest-kube-apiserver-0", wantWhy: "Secret " + secretKubeletClient + " re-issued",
		},
		"the admin, ServiceAccount and health-check Secrets restart no component": {
			trust: pki.oldRoot.pem, current: with(secretAdmin, secretSASigner, secretHealthClient),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := &demo{opts: options{dir: t.TempDir()}}
			g, err := d.newGuest("tenant-a")
			if err != nil {
				t.Fatal(err)
			}
			g.trust = pki.oldRoot.pem
			for _, c := range g.components() {
				if c.running, err = g.want(c.secrets, before); err != nil {
					t.Fatal(err)
				}
			}
			g.trust = tc.trust
			c, why, err := g.nextStale(tc.current)
			if tc.want == "" {
				if !errors.Is(err, errNoComponentStale) {
					t.Fatalf("stale: %v (%s), %v; want none", c, why, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.name != tc.want || why != tc.wantWhy {
				t.Errorf("stale %s (%s), want %s (%s)", c.name, why, tc.want, tc.wantWhy)
			}
		})
	}
}

// TestGuestCertificates: the Certificates the demo applies for the guest cluster name exactly
// the Secrets its components read (plus the examples' shared ones), with the roles they need.
func TestGuestCertificates(t *testing.T) {
	secrets := map[string]string{}
	for _, doc := range strings.Split(guestCertificates(), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var c v1alpha1.Certificate
		if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		if c.Kind != "Certificate" || c.Spec.CARef.Name != caName || c.Name+"-tls" != c.Spec.SecretName {
			t.Errorf("Certificate %s: kind %s, caRef %s, secretName %s", c.Name, c.Kind, c.Spec.CARef.Name, c.Spec.SecretName)
		}
		secrets[c.Spec.SecretName] = c.Spec.Role
	}
	var want []string
	for _, name := range guestSecretNames() {
		switch name {
		case secretKubeletClient, secretSASigner, secretAdmin, secretHealthClient:
			continue // the examples'
		}
		want = append(want, name)
		if secrets[name] == "" {
			t.Errorf("no Certificate for Secret %s", name)
		}
	}
	if len(secrets) != len(want) {
		t.Errorf("Certificates for %v, want %v", secrets, want)
	}
	for i := range guestEtcdMembers {
		server, peer := etcdSecrets(i)
		// etcd's JSON gateway calls the member with its serving certificate: it needs client auth.
		if secrets[server] != "peer" || secrets[peer] != "peer" {
			t.Errorf("etcd member %d: roles %q and %q, want peer (server and client auth)", i, secrets[server], secrets[peer])
		}
	}
}
