package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/test/kit/proc"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// The guest cluster of the root rotation proof (--rotate-root): three etcd members and two
// kube-apiservers behind a forwarder, each component on Secrets of its own.
const (
	guestEtcdMembers = 3
	guestAPIServers  = 2

	// guestHealthLimit bounds the wait for a (re)started component, and for every etcd member
	// to be healthy after a step.
	guestHealthLimit = 2 * time.Minute
	// etcdStopGrace is how long an etcd member gets to exit after SIGTERM before SIGKILL.
	etcdStopGrace = 2 * time.Second
)

// componentKind is what a guest component runs.
type componentKind string

const (
	kindEtcd      componentKind = "etcd"
	kindAPIServer componentKind = "kube-apiserver"
)

// Secrets of the guest cluster that are not a component's own, from deploy/examples.
const (
	// secretHealthClient is the etcd client certificate the demo checks every member's /health
	// with (the examples' API server etcd client, which no guest API server uses).
	secretHealthClient = secretEtcdClient
)

// etcdSecrets returns the Secrets etcd member i serves and meets its peers with.
func etcdSecrets(i int) (server, peer string) {
	return fmt.Sprintf("guest-etcd-%d-server-tls", i), fmt.Sprintf("guest-etcd-%d-peer-tls", i)
}

// apiServerSecrets returns the Secrets kube-apiserver i serves with and reaches etcd with.
func apiServerSecrets(i int) (serving, etcdClient string) {
	return fmt.Sprintf("guest-kube-apiserver-%d-tls", i), fmt.Sprintf("guest-kube-apiserver-%d-etcd-client-tls", i)
}

// inputs is what a component runs on: the roots it trusts (fingerprints) and the serial of
// the certificate of each Secret it reads.
type inputs struct {
	trust   string
	serials []string
}

// equal reports whether a component on a runs on b.
func (a inputs) equal(b inputs) bool {
	return a.trust == b.trust && slices.Equal(a.serials, b.serials)
}

// component is one program of the guest cluster.
type component struct {
	name  string
	kind  componentKind
	index int
	// secrets are the Secrets whose tls.crt and tls.key it reads, as pki/<secret>.crt and
	// .key; its trust is pki/ca.crt.
	secrets []string
	dir     string
	url     string // client URL (etcd) or the API server's URL
	peerURL string // etcd only
	proc    *proc.Process
	running inputs // what it was started with
}

func (c *component) file(name string) string { return filepath.Join(c.dir, "pki", name) }

// guest is the guest cluster.
type guest struct {
	d      *demo
	ns     string
	dir    string
	bins   map[string]string
	etcds  []*component
	apis   []*component
	fwd    *forwarder
	prober *prober

	// filesMu is held while the demo rewrites the files its own clients read (the health
	// checks' and the prober's), so that no client reads a certificate with the other key.
	filesMu sync.RWMutex
	// trust is the PEM every component trusts now (their ca.crt): the old root, then from
	// phase Trusting the bundle of old and new, then after Completed the new root alone.
	trust []byte
	// monitor is what the demo's health checks last wrote into monitor/.
	monitor inputs
	// proberAdmin is the serial of the admin certificate in the prober's kubeconfig.
	proberAdmin string
}

// components returns every component in the order they are rolled: the etcd members, then
// the API servers that depend on them.
func (g *guest) components() []*component {
	return append(slices.Clone(g.etcds), g.apis...)
}

// newGuest lays out the guest cluster on free loopback ports; nothing runs yet.
func (d *demo) newGuest(ns string) (*guest, error) {
	g := &guest{d: d, ns: ns, dir: d.path("guest"), bins: map[string]string{}}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		path, err := testenv.Binary(name)
		if err != nil {
			return nil, err
		}
		g.bins[name] = path
	}
	ports, err := proc.FreePorts(2*guestEtcdMembers + guestAPIServers)
	if err != nil {
		return nil, err
	}
	for i := range guestEtcdMembers {
		server, peer := etcdSecrets(i)
		name := fmt.Sprintf("guest-etcd-%d", i)
		g.etcds = append(g.etcds, &component{
			name: name, kind: kindEtcd, index: i, secrets: []string{server, peer},
			dir:     filepath.Join(g.dir, name),
			url:     fmt.Sprintf("https://127.0.0.1:%d", ports[2*i]),
			peerURL: fmt.Sprintf("https://127.0.0.1:%d", ports[2*i+1]),
		})
	}
	for i := range guestAPIServers {
		serving, etcdClient := apiServerSecrets(i)
		name := fmt.Sprintf("guest-kube-apiserver-%d", i)
		g.apis = append(g.apis, &component{
			name: name, kind: kindAPIServer, index: i, secrets: []string{serving, etcdClient, secretKubeletClient},
			dir: filepath.Join(g.dir, name),
			url: fmt.Sprintf("https://127.0.0.1:%d", ports[2*guestEtcdMembers+i]),
		})
	}
	return g, nil
}

// guestSecretNames returns every Secret the guest cluster reads.
func guestSecretNames() []string {
	names := []string{secretKubeletClient, secretSASigner, secretAdmin, secretHealthClient}
	for i := range guestEtcdMembers {
		s, p := etcdSecrets(i)
		names = append(names, s, p)
	}
	for i := range guestAPIServers {
		s, e := apiServerSecrets(i)
		names = append(names, s, e)
	}
	return names
}

// readSecrets returns the guest cluster's Secrets from the local control plane.
func (g *guest) readSecrets(ctx context.Context) (map[string]*corev1.Secret, error) {
	out := map[string]*corev1.Secret{}
	list, err := g.d.env.KubeClient.CoreV1().Secrets(g.ns).List(ctx, metav1ListAll)
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	for _, name := range guestSecretNames() {
		if out[name] == nil {
			return nil, fmt.Errorf("Secret %s/%s not found", g.ns, name)
		}
	}
	return out, nil
}

// leafSerial returns the serial of the leaf in s's tls.crt.
func leafSerial(s *corev1.Secret) (string, error) {
	chain, err := contract.ParseCertificates(s.Data["tls.crt"])
	if err != nil {
		return "", fmt.Errorf("Secret %s tls.crt: %w", s.Name, err)
	}
	return contract.Serial(chain[0].SerialNumber), nil
}

// trustID names the roots in pem by their fingerprints.
func trustID(pem []byte) (string, error) {
	certs, err := contract.ParseCertificates(pem)
	if err != nil {
		return "", err
	}
	return strings.Join(contract.Fingerprints(certs), ","), nil
}

// want returns the inputs a component (or a client of the demo's) reading secrets and trusting
// g.trust should run on now.
func (g *guest) want(secrets []string, current map[string]*corev1.Secret) (inputs, error) {
	id, err := trustID(g.trust)
	if err != nil {
		return inputs{}, err
	}
	in := inputs{trust: id}
	for _, name := range secrets {
		serial, err := leafSerial(current[name])
		if err != nil {
			return inputs{}, err
		}
		in.serials = append(in.serials, serial)
	}
	return in, nil
}

// changes says in words how b differs from a.
func changes(secrets []string, a, b inputs) string {
	var out []string
	if a.trust != b.trust {
		out = append(out, fmt.Sprintf("trust %d → %d root(s)", len(strings.Split(a.trust, ",")), len(strings.Split(b.trust, ","))))
	}
	for i, name := range secrets {
		if i < len(a.serials) && i < len(b.serials) && a.serials[i] != b.serials[i] {
			out = append(out, "Secret "+name+" re-issued")
		}
	}
	return strings.Join(out, ", ")
}

// writeFiles writes into dir the trust (ca.crt) and each Secret's tls.crt and tls.key.
func (g *guest) writeFiles(dir string, secrets []string, current map[string]*corev1.Secret) error {
	if err := proc.WriteFile(filepath.Join(dir, "ca.crt"), g.trust); err != nil {
		return err
	}
	for _, name := range secrets {
		s := current[name]
		if err := proc.WriteFile(filepath.Join(dir, name+".crt"), s.Data["tls.crt"]); err != nil {
			return err
		}
		if err := proc.WriteFile(filepath.Join(dir, name+".key"), s.Data["tls.key"]); err != nil {
			return err
		}
	}
	return nil
}

// monitorSecrets are the Secrets of the demo's own health checks: the etcd client certificate
// and the admin certificate (for the API servers' /readyz).
var monitorSecrets = []string{secretHealthClient, secretAdmin}

func (g *guest) monitorFile(name string) string { return filepath.Join(g.dir, "monitor", name) }

// refreshMonitor rewrites the health checks' files when their Secrets or the trust changed.
func (g *guest) refreshMonitor(current map[string]*corev1.Secret) error {
	want, err := g.want(monitorSecrets, current)
	if err != nil {
		return err
	}
	if want.equal(g.monitor) {
		return nil
	}
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	if err := g.writeFiles(filepath.Join(g.dir, "monitor"), monitorSecrets, current); err != nil {
		return err
	}
	g.monitor = want
	return nil
}

// etcdClient returns a client of the health checks for etcd.
func (g *guest) etcdClient() (*http.Client, error) {
	g.filesMu.RLock()
	defer g.filesMu.RUnlock()
	return tlsClient(g.monitorFile("ca.crt"), g.monitorFile(secretHealthClient+".crt"), g.monitorFile(secretHealthClient+".key"))
}

// adminClient returns a client of the health checks for the API servers.
func (g *guest) adminClient() (*http.Client, error) {
	g.filesMu.RLock()
	defer g.filesMu.RUnlock()
	return tlsClient(g.monitorFile("ca.crt"), g.monitorFile(secretAdmin+".crt"), g.monitorFile(secretAdmin+".key"))
}

// etcdArgs returns etcd member c's flags: serving, peer and trust from its files; the data
// directory outlives restarts, so a restarted member rejoins with what it had.
func (g *guest) etcdArgs(c *component) []string {
	var initial []string
	for _, m := range g.etcds {
		initial = append(initial, m.name+"="+m.peerURL)
	}
	server, peer := etcdSecrets(c.index)
	return []string{
		"--name=" + c.name,
		"--data-dir=" + filepath.Join(c.dir, "data"),
		"--listen-client-urls=" + c.url, "--advertise-client-urls=" + c.url,
		"--listen-peer-urls=" + c.peerURL, "--initial-advertise-peer-urls=" + c.peerURL,
		"--initial-cluster=" + strings.Join(initial, ","),
		"--initial-cluster-state=new", "--initial-cluster-token=clusterpki-demo-guest",
		"--cert-file=" + c.file(server+".crt"), "--key-file=" + c.file(server+".key"),
		"--client-cert-auth", "--trusted-ca-file=" + c.file("ca.crt"),
		"--peer-cert-file=" + c.file(peer+".crt"), "--peer-key-file=" + c.file(peer+".key"),
		"--peer-client-cert-auth", "--peer-trusted-ca-file=" + c.file("ca.crt"),
		"--log-level=warn", "--unsafe-no-fsync",
	}
}

// apiServerArgs returns kube-apiserver c's flags: every etcd member, its own serving and etcd
// client certificates, the trust for clients and for etcd from its ca.crt.
func (g *guest) apiServerArgs(c *component) []string {
	var etcds []string
	for _, m := range g.etcds {
		etcds = append(etcds, m.url)
	}
	serving, etcdClient := apiServerSecrets(c.index)
	port := c.url[strings.LastIndexByte(c.url, ':')+1:]
	sa := filepath.Join(g.dir, "service-account")
	return []string{
		"--etcd-servers=" + strings.Join(etcds, ","),
		"--etcd-cafile=" + c.file("ca.crt"),
		"--etcd-certfile=" + c.file(etcdClient+".crt"), "--etcd-keyfile=" + c.file(etcdClient+".key"),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + port,
		"--cert-dir=" + filepath.Join(c.dir, "cert-dir"),
		"--tls-cert-file=" + c.file(serving+".crt"), "--tls-private-key-file=" + c.file(serving+".key"),
		"--client-ca-file=" + c.file("ca.crt"),
		"--kubelet-client-certificate=" + c.file(secretKubeletClient+".crt"), "--kubelet-client-key=" + c.file(secretKubeletClient+".key"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(sa, "service-account.pub"),
		"--service-account-signing-key-file=" + filepath.Join(sa, "service-account.key"),
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--profiling=false",
		"--v=1",
	}
}

// startComponent writes c's files for current and starts it (without waiting).
func (g *guest) startComponent(c *component, current map[string]*corev1.Secret) error {
	want, err := g.want(c.secrets, current)
	if err != nil {
		return err
	}
	if err := g.writeFiles(filepath.Join(c.dir, "pki"), c.secrets, current); err != nil {
		return err
	}
	args, env := g.etcdArgs(c), proc.EnvWithout("ETCD")
	if c.kind == kindAPIServer {
		args, env = g.apiServerArgs(c), proc.EnvWithout("KUBECONFIG")
	}
	p, err := g.d.procs.start(c.name, g.d.logPath(c.name), env, g.bins[string(c.kind)], args...)
	if err != nil {
		return err
	}
	c.proc, c.running = p, want
	return nil
}

// waitReady waits until c answers: an etcd member its /health, an API server its /readyz.
func (g *guest) waitReady(ctx context.Context, c *component) error {
	var client *http.Client
	var err error
	url, want := c.url+"/health", `"health":"true"`
	if c.kind == kindAPIServer {
		client, err = g.adminClient()
		url, want = c.url+"/readyz", "ok"
	} else {
		client, err = g.etcdClient()
	}
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	return waitHTTP(ctx, c.proc, client, url, want)
}

// etcdPost posts body to path (an endpoint of etcd's JSON gateway) on member c and decodes the
// answer into out.
func (g *guest) etcdPost(ctx context.Context, c *component, path, body string, out any) error {
	client, err := g.etcdClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", c.name, path, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}

// etcdStatus is the part of etcd's /v3/maintenance/status the roll reads.
type etcdStatus struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader string `json:"leader"`
}

// moveLeaderFrom hands etcd's leadership to another member when c holds it, as
// `etcdctl move-leader` before maintenance, so that stopping c costs no election.
func (g *guest) moveLeaderFrom(ctx context.Context, c *component) error {
	var st etcdStatus
	if err := g.etcdPost(ctx, c, "/v3/maintenance/status", "{}", &st); err != nil {
		return err
	}
	if st.Header.MemberID == "" || st.Leader != st.Header.MemberID {
		return nil
	}
	for _, m := range g.etcds {
		if m == c {
			continue
		}
		var other etcdStatus
		if err := g.etcdPost(ctx, m, "/v3/maintenance/status", "{}", &other); err != nil {
			continue // try the next member
		}
		var out struct{}
		return g.etcdPost(ctx, c, "/v3/maintenance/transfer-leadership", fmt.Sprintf(`{"targetID":%q}`, other.Header.MemberID), &out)
	}
	return errors.New("no other member answers")
}

// etcdHealth asks every member for /health and returns, per member, "" or why it is not
// healthy.
func (g *guest) etcdHealth(ctx context.Context) []string {
	out := make([]string, len(g.etcds))
	client, err := g.etcdClient()
	if err != nil {
		for i := range out {
			out[i] = err.Error()
		}
		return out
	}
	defer client.CloseIdleConnections()
	for i, m := range g.etcds {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url+"/health", nil)
		if err != nil {
			out[i] = err.Error()
			continue
		}
		resp, err := client.Do(req)
		if err != nil {
			out[i] = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			out[i] = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
	}
	return out
}

// waitEtcdHealthy waits until every member answers /health, and returns the last answers.
func (g *guest) waitEtcdHealthy(ctx context.Context) ([]string, error) {
	deadline := time.Now().Add(guestHealthLimit)
	for {
		health := g.etcdHealth(ctx)
		if !slices.ContainsFunc(health, func(s string) bool { return s != "" }) {
			return health, nil
		}
		if time.Now().After(deadline) {
			return health, fmt.Errorf("etcd members not healthy after %v: %s", guestHealthLimit, strings.Join(health, "; "))
		}
		select {
		case <-ctx.Done():
			return health, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// boot writes every file from current and starts the guest cluster: the etcd members
// together (they form their cluster), then the API servers, then the forwarder in front of
// them.
func (g *guest) boot(ctx context.Context, current map[string]*corev1.Secret) error {
	// The ServiceAccount signing key is a key pair, not a TLS identity: the guest keeps the
	// one it booted with (rolling it would mean publishing both public keys for a while, which
	// is not what this proof is about).
	key := current[secretSASigner].Data["tls.key"]
	pub, err := publicKeyPEM(key)
	if err != nil {
		return fmt.Errorf("Secret %s/%s tls.key: %w", g.ns, secretSASigner, err)
	}
	sa := filepath.Join(g.dir, "service-account")
	if err := proc.WriteFile(filepath.Join(sa, "service-account.key"), key); err != nil {
		return err
	}
	if err := proc.WriteFile(filepath.Join(sa, "service-account.pub"), pub); err != nil {
		return err
	}
	if err := g.refreshMonitor(current); err != nil {
		return err
	}
	for _, group := range [][]*component{g.etcds, g.apis} {
		for _, c := range group {
			if err := g.startComponent(c, current); err != nil {
				return err
			}
		}
		for _, c := range group {
			if err := g.waitReady(ctx, c); err != nil {
				return &stepError{step: "Start " + c.name, log: c.proc.LogPath, err: err}
			}
		}
	}
	var addrs []string
	for _, a := range g.apis {
		addrs = append(addrs, strings.TrimPrefix(a.url, "https://"))
	}
	g.fwd, err = newForwarder(addrs...)
	return err
}

// startProber writes the prober's kubeconfig (the issued admin certificate from current, the
// trust as it is now) and starts it, waiting for its first answers.
func (g *guest) startProber(ctx context.Context, current map[string]*corev1.Secret) error {
	pdir := filepath.Join(g.dir, "prober")
	if err := g.writeFiles(pdir, []string{secretAdmin}, current); err != nil {
		return err
	}
	serial, err := leafSerial(current[secretAdmin])
	if err != nil {
		return err
	}
	g.proberAdmin = serial
	kubeconfig := filepath.Join(pdir, "kubeconfig")
	if err := writeCertKubeconfig(kubeconfig, "https://"+g.fwd.Addr(), filepath.Join(pdir, "ca.crt"),
		filepath.Join(pdir, secretAdmin+".crt"), filepath.Join(pdir, secretAdmin+".key")); err != nil {
		return err
	}
	g.prober = &prober{kubeconfig: kubeconfig, filesMu: &g.filesMu}
	g.prober.start()
	trust, err := trustID(g.trust)
	if err != nil {
		return err
	}
	return g.prober.waitSuccesses(ctx, trust, 5, time.Minute)
}

// setProberTrust makes the prober trust pem alone from its next request.
func (g *guest) setProberTrust(pem []byte) error {
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	return proc.WriteFile(filepath.Join(g.dir, "prober", "ca.crt"), pem)
}

// restart stops c, rewrites its files from current and starts it again, waiting until it is
// ready; an API server is drained from the forwarder first and put back once ready.
func (g *guest) restart(ctx context.Context, c *component, current map[string]*corev1.Secret) error {
	switch c.kind {
	case kindAPIServer:
		if err := g.fwd.drain(ctx, c.index, 30*time.Second); err != nil {
			return err
		}
		g.d.procs.stop(c.proc)
	case kindEtcd:
		if err := g.moveLeaderFrom(ctx, c); err != nil {
			return fmt.Errorf("move etcd leadership away from %s: %w", c.name, err)
		}
		// etcd's graceful stop waits up to its request timeout (7s) for its clients' watch
		// streams to end; the API servers' never do. Its leadership moved, a member stopped
		// short of that loses nothing: raft has the quorum, the member its WAL.
		g.d.procs.stopWithin(c.proc, etcdStopGrace)
	}
	if err := g.startComponent(c, current); err != nil {
		return err
	}
	if err := g.waitReady(ctx, c); err != nil {
		return &stepError{step: "Restart " + c.name, log: c.proc.LogPath, err: err}
	}
	if c.kind == kindAPIServer {
		g.fwd.setInRotation(c.index, true)
	}
	return nil
}

// stop stops the prober and the forwarder (the processes stop with the demo's).
func (g *guest) stop() {
	if g.prober != nil {
		g.prober.stop()
	}
	if g.fwd != nil {
		_ = g.fwd.Close()
	}
}

var errNoComponentStale = errors.New("no component stale")

// nextStale returns the first component (in roll order) whose inputs differ from what current
// and g.trust ask for, and what changed.
func (g *guest) nextStale(current map[string]*corev1.Secret) (*component, string, error) {
	for _, c := range g.components() {
		want, err := g.want(c.secrets, current)
		if err != nil {
			return nil, "", err
		}
		if !want.equal(c.running) {
			return c, changes(c.secrets, c.running, want), nil
		}
	}
	return nil, "", errNoComponentStale
}
