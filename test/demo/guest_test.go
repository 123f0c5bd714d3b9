package main

import (
	"bytes"
	"context"
	"crypto/rand"
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// leaves re-issued under the new root (one restart each), while the prober, trusting the old
// root only, asks for the namespaces every 200ms; then the prober trusts the new root only.
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
	roll(pki.secrets(t, true))
	if want := 2 * (guestEtcdMembers + guestAPIServers); restarts != want {
		t.Errorf("%d restarts, want %d: each component once for the trust, once for its Secrets", restarts, want)
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
