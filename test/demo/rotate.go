package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	clientset "github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// The root rotation proof (--rotate-root): after the usual proof, a guest cluster of three
// etcd members and two kube-apiservers runs on Certificates of its own; a prober asks it for
// its namespaces every probeInterval through a TCP forwarder, trusting only the OLD root;
// the CA is asked to rotate its root, and the guest cluster rolls as a real one would, one
// component at a time: once the published trust holds both roots, every component gets it;
// whenever a component's Secret is re-issued under the new root, that component gets it; once
// the rotation completed and the published trust is the new root alone, every component drops
// the old one. Not one request may fail. Then the prober trusts only the NEW root.

const (
	// guestRotationOverlap is spec.root.rotationOverlap for the proof: the shortest allowed.
	guestRotationOverlap = "1m"
	// rollTick is how often the roll looks at the CA and the Secrets.
	rollTick = 200 * time.Millisecond
	// newRootProbes is how many requests must succeed trusting only the new root at the end.
	newRootProbes = 10

	// RotationSuccessMarker is printed once the guest cluster answered every request during
	// and after the root rotation.
	RotationSuccessMarker = "ROTATION OK: the guest cluster answered every request while its root was rotated and its components rolled one at a time"
)

var metav1ListAll = metav1.ListOptions{}

// rotationReport is what the root rotation proof saw.
type rotationReport struct {
	oldRoot, newRoot string // fingerprints
	annotation       string // the value of the rotate-root annotation
	annotated        time.Time
	phases           []phaseSeen
	restarts         []restartRecord
	// initialHealth is every etcd member's /health before the rotation ("" = healthy).
	initialHealth []string
	probes        int
	failures      []probeFailure
	byTrust       map[string]int // successful requests per trust the prober held
	finalCA       *v1alpha1.CertificateAuthority
	getCA         string // kubectl get pkica -o wide
	namespaces    string // kubectl get namespaces through the forwarder, trusting the new root only
	forwarder     string
	served        []int // connections each API server was given
	dialFailures  int
	kubeconfig    string
	// events are the reasons of the CA's Normal events; warnings every Warning event in the
	// namespace.
	events   string
	warnings []string
}

// phaseSeen is a phase of the rotation and when the demo saw it.
type phaseSeen struct {
	phase                  v1alpha1.RootRotationPhase
	at                     time.Time
	trusting, moved, total int32
}

// String says the phase and its counts, where they mean something.
func (p phaseSeen) String() string {
	switch {
	case p.total == 0:
		return "phase " + string(p.phase)
	case p.phase == v1alpha1.RootRotationTrusting:
		return fmt.Sprintf("phase %s (trusting %d/%d)", p.phase, p.trusting, p.total)
	default:
		return fmt.Sprintf("phase %s (moved %d/%d)", p.phase, p.moved, p.total)
	}
}

// restartRecord is one restart of a guest component.
type restartRecord struct {
	component string
	why       string
	phase     v1alpha1.RootRotationPhase
	at        time.Time
	took      time.Duration
	// etcdHealth is every member's /health after the restart ("" = healthy).
	etcdHealth []string
}

// guestCertificates returns the Certificates of the guest cluster as YAML for kubectl apply:
// for each etcd member a serving and a peer certificate, for each API server a serving and an
// etcd client certificate. The kubelet client, ServiceAccount and admin certificates are the
// examples'.
func guestCertificates() string {
	var b strings.Builder
	cert := func(comment, secret, role, cn, sans string) {
		fmt.Fprintf(&b, `---
# %s
apiVersion: clusterpki.dev/v1alpha1
kind: Certificate
metadata:
  name: %s
spec:
  caRef: {name: %s}
  role: %s
  secretName: %s
  commonName: %s
%s  ttl: 2160h
`, comment, strings.TrimSuffix(secret, "-tls"), caName, role, secret, cn, sans)
	}
	for i := range guestEtcdMembers {
		server, peer := etcdSecrets(i)
		sans := "  altNames: [etcd, localhost]\n  ipSANs: [127.0.0.1]\n"
		// Role peer (server and client auth), as kubeadm issues etcd's serving certificate:
		// etcd's JSON gateway calls the member's own gRPC API with it.
		cert(fmt.Sprintf("Guest etcd member %d: serving certificate for its clients.", i), server, "peer", "etcd", sans)
		cert(fmt.Sprintf("Guest etcd member %d: peer certificate, both directions.", i), peer, "peer", "etcd", sans)
	}
	for i := range guestAPIServers {
		serving, etcdClient := apiServerSecrets(i)
		cert(fmt.Sprintf("Guest kube-apiserver %d: serving certificate.", i), serving, "server", "kube-apiserver",
			"  altNames: [kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local, localhost]\n  ipSANs: [127.0.0.1, 10.0.0.1]\n")
		cert(fmt.Sprintf("Guest kube-apiserver %d: client certificate towards etcd.", i), etcdClient, "client", "kube-apiserver-etcd-client", "")
	}
	return b.String()
}

// issueGuestCertificates sets the CA's rotationOverlap to the shortest allowed, applies the
// guest cluster's Certificates and waits until they are Ready.
func (d *demo) issueGuestCertificates(ctx context.Context) (string, error) {
	ns := d.opts.namespace
	patch := fmt.Sprintf(`{"spec":{"root":{"rotationOverlap":%q}}}`, guestRotationOverlap)
	if err := d.kubectl(ctx, "patch", "-n", ns, "certificateauthority", caName, "--type=merge", "-p", patch); err != nil {
		return "", err
	}
	file := d.path("guest", "certificates.yaml")
	if err := proc.WriteFile(file, []byte(guestCertificates())); err != nil {
		return "", err
	}
	if err := d.kubectl(ctx, "apply", "-n", ns, "-f", file); err != nil {
		return "", err
	}
	cs, err := clientset.NewForConfig(d.env.RESTConfig)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		certs, err := cs.ClusterpkiV1alpha1().Certificates(ns).List(ctx, metav1ListAll)
		if err != nil {
			return "", err
		}
		var pending []string
		for _, c := range certs.Items {
			if !apimeta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
				pending = append(pending, c.Name)
			}
		}
		if len(pending) == 0 {
			return fmt.Sprintf("%d Certificates Ready (%d for the guest cluster, in %s); rotationOverlap %s", len(certs.Items), 2*(guestEtcdMembers+guestAPIServers), relToCwd(file), guestRotationOverlap), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not Ready after %v: %s", readyTimeout, strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// bootGuest starts the guest cluster from the issued Secrets, the prober in front of it
// (trusting the root published now, the old one), and waits for its first answers.
func (d *demo) bootGuest(ctx context.Context) (string, error) {
	g, err := d.newGuest(d.opts.namespace)
	if err != nil {
		return "", err
	}
	d.guest = g
	cm, err := d.env.KubeClient.CoreV1().ConfigMaps(g.ns).Get(ctx, caConfigMap, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	g.trust = []byte(cm.Data[contract.TrustKey])
	current, err := g.readSecrets(ctx)
	if err != nil {
		return "", err
	}
	if err := g.boot(ctx, current); err != nil {
		return "", err
	}
	if err := g.startProber(ctx, current); err != nil {
		return "", err
	}
	return fmt.Sprintf("etcd at %s; kube-apiservers at %s behind %s", urls(g.etcds), urls(g.apis), g.fwd.Addr()), nil
}

func urls(cs []*component) string {
	var out []string
	for _, c := range cs {
		out = append(out, strings.TrimPrefix(c.url, "https://"))
	}
	return strings.Join(out, ", ")
}

// refreshProberAdmin rewrites the prober's admin certificate when its Secret was re-issued,
// as a user whose kubeconfig is kept current would see it.
func (g *guest) refreshProberAdmin(current map[string]*corev1.Secret) error {
	serial, err := leafSerial(current[secretAdmin])
	if err != nil || serial == g.proberAdmin {
		return err
	}
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	s := current[secretAdmin]
	pdir := filepath.Join(g.dir, "prober")
	if err := proc.WriteFile(filepath.Join(pdir, secretAdmin+".crt"), s.Data["tls.crt"]); err != nil {
		return err
	}
	if err := proc.WriteFile(filepath.Join(pdir, secretAdmin+".key"), s.Data["tls.key"]); err != nil {
		return err
	}
	g.proberAdmin = serial
	return nil
}

// rollStep restarts the first component whose inputs are stale, if any, and waits until every
// etcd member is healthy again. It returns nil and no error when every component is current.
func (g *guest) rollStep(ctx context.Context, current map[string]*corev1.Secret, phase v1alpha1.RootRotationPhase) (*restartRecord, error) {
	c, why, err := g.nextStale(current)
	if errors.Is(err, errNoComponentStale) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := &restartRecord{component: c.name, why: why, phase: phase, at: time.Now()}
	if err := g.restart(ctx, c, current); err != nil {
		return nil, err
	}
	r.took = time.Since(r.at)
	r.etcdHealth, err = g.waitEtcdHealthy(ctx)
	return r, err
}

// publishedTrust returns the CA's ConfigMap's ca.crt and the fingerprints of its roots.
func (d *demo) publishedTrust(ctx context.Context) ([]byte, []string, error) {
	cm, err := d.env.KubeClient.CoreV1().ConfigMaps(d.opts.namespace).Get(ctx, caConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	pem := []byte(cm.Data[contract.TrustKey])
	roots, err := contract.ParseCertificates(pem)
	if err != nil {
		return nil, nil, fmt.Errorf("ConfigMap %s: %w", caConfigMap, err)
	}
	return pem, contract.Fingerprints(roots), nil
}

// caTracker follows the CertificateAuthority with a watch and remembers each phase of the
// rotation whose old root is oldRoot, with the time it was first seen.
type caTracker struct {
	oldRoot string

	mu     sync.Mutex
	ca     *v1alpha1.CertificateAuthority
	phases []phaseSeen
	err    error
}

// observe records ca.
func (t *caTracker) observe(ca *v1alpha1.CertificateAuthority) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ca = ca
	r := ca.Status.RootRotation
	if r == nil || r.OldRoot == nil || r.OldRoot.FingerprintSHA256 != t.oldRoot {
		return // no rotation, or an earlier one
	}
	if n := len(t.phases); n == 0 || t.phases[n-1].phase != r.Phase {
		t.phases = append(t.phases, phaseSeen{phase: r.Phase, at: time.Now(), trusting: r.Trusting, moved: r.Moved, total: r.Total})
	}
}

// latest returns the CA last seen and the phase of the rotation ("" before it started).
func (t *caTracker) latest() (*v1alpha1.CertificateAuthority, v1alpha1.RootRotationPhase, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var phase v1alpha1.RootRotationPhase
	if n := len(t.phases); n > 0 {
		phase = t.phases[n-1].phase
	}
	return t.ca, phase, t.err
}

// run watches the CA until ctx ends, starting again after a watch closes.
func (t *caTracker) run(ctx context.Context, cs clientset.Interface, ns, name string) {
	api := cs.ClusterpkiV1alpha1().CertificateAuthorities(ns)
	for ctx.Err() == nil {
		ca, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.mu.Lock()
			t.err = err
			t.mu.Unlock()
			time.Sleep(time.Second)
			continue
		}
		t.observe(ca)
		w, err := api.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: ca.ResourceVersion})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if ca, ok := ev.Object.(*v1alpha1.CertificateAuthority); ok {
				t.observe(ca)
			}
		}
		w.Stop()
	}
}

// rotateRoot requests the root rotation and rolls the guest cluster through it; see the top
// of this file.
func (d *demo) rotateRoot(ctx context.Context) (*rotationReport, error) {
	g := d.guest
	ns := d.opts.namespace
	cs, err := clientset.NewForConfig(d.env.RESTConfig)
	if err != nil {
		return nil, err
	}
	ca, err := cs.ClusterpkiV1alpha1().CertificateAuthorities(ns).Get(ctx, caName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if ca.Status.Root == nil {
		return nil, errors.New("the CertificateAuthority publishes no status.root")
	}
	rep := &rotationReport{oldRoot: ca.Status.Root.FingerprintSHA256, forwarder: g.fwd.Addr(), kubeconfig: g.prober.kubeconfig}
	oldTrust, err := trustID(g.trust)
	if err != nil {
		return nil, err
	}
	if oldTrust != rep.oldRoot {
		return nil, fmt.Errorf("ConfigMap %s holds %s, the CA's status.root is %s", caConfigMap, oldTrust, rep.oldRoot)
	}
	if rep.initialHealth, err = g.waitEtcdHealthy(ctx); err != nil {
		return rep, err
	}
	tracker := &caTracker{oldRoot: rep.oldRoot}
	// Whatever happens, the report says what the prober and the forwarder saw.
	defer func() {
		rep.phases = trackerPhases(tracker)
		rep.probes, rep.failures, rep.byTrust = g.prober.counts()
		rep.served, rep.dialFailures = g.fwd.stats()
	}()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go tracker.run(watchCtx, cs, ns, caName)

	rep.annotation = time.Now().UTC().Format("demo-20060102T150405Z")
	rep.annotated = time.Now()
	if err := d.kubectl(ctx, "annotate", "-n", ns, "--overwrite", "certificateauthority", caName, v1alpha1.AnnotationRotateRoot+"="+rep.annotation); err != nil {
		return rep, err
	}
	fmt.Fprintf(d.out, "      +%-7s kubectl annotate certificateauthority %s %s=%s\n", "0s", caName, v1alpha1.AnnotationRotateRoot, rep.annotation)

	// The components follow the published trust: the bundle of both roots once it holds the new
	// one too, the new root alone once the rotation completed.
	bundleAdopted, newAdopted := false, false
	printed := 0
	for {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("the rotation did not complete: %w", err)
		}
		ca, phase, err := tracker.latest()
		if err != nil && ca == nil {
			return rep, err
		}
		for _, p := range trackerPhases(tracker)[printed:] {
			fmt.Fprintf(d.out, "      +%-7s %s\n", since(rep.annotated, p.at), p)
			printed++
		}
		switch {
		case !bundleAdopted && (phase == v1alpha1.RootRotationTrusting || phase == v1alpha1.RootRotationMoving || phase == v1alpha1.RootRotationOverlap):
			pem, roots, err := d.publishedTrust(ctx)
			if err != nil {
				return rep, err
			}
			if len(roots) == 2 && slices.Contains(roots, rep.oldRoot) {
				g.trust, bundleAdopted = pem, true
				fmt.Fprintf(d.out, "      +%-7s ConfigMap %s holds the old and the new root: every component gets both\n", since(rep.annotated, time.Now()), caConfigMap)
			}
		case !newAdopted && phase == v1alpha1.RootRotationCompleted:
			if r := ca.Status.RootRotation; r != nil && r.NewRoot != nil {
				rep.newRoot = r.NewRoot.FingerprintSHA256
			}
			pem, roots, err := d.publishedTrust(ctx)
			if err != nil {
				return rep, err
			}
			if len(roots) != 1 || roots[0] != rep.newRoot || rep.newRoot == rep.oldRoot {
				return rep, fmt.Errorf("after the rotation ConfigMap %s holds %v, want the new root %s alone", caConfigMap, roots, rep.newRoot)
			}
			g.trust, newAdopted = pem, true
			fmt.Fprintf(d.out, "      +%-7s ConfigMap %s holds the new root alone: every component drops the old one\n", since(rep.annotated, time.Now()), caConfigMap)
		}
		current, err := g.readSecrets(ctx)
		if err != nil {
			return rep, err
		}
		if err := g.refreshMonitor(current); err != nil {
			return rep, err
		}
		if err := g.refreshProberAdmin(current); err != nil {
			return rep, err
		}
		r, err := g.rollStep(ctx, current, phase)
		if r != nil {
			rep.restarts = append(rep.restarts, *r)
			fmt.Fprintf(d.out, "      +%-7s restarted %-22s %-5s (%s); etcd %d/%d healthy\n", since(rep.annotated, r.at), r.component, r.took.Round(100*time.Millisecond), r.why, countHealthy(r.etcdHealth), len(r.etcdHealth))
		}
		if err != nil {
			return rep, err
		}
		if r != nil {
			continue // look again at once: time has passed
		}
		if newAdopted {
			rep.finalCA = ca
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(rollTick):
		}
	}
	for _, p := range trackerPhases(tracker)[printed:] {
		fmt.Fprintf(d.out, "      +%-7s %s\n", since(rep.annotated, p.at), p)
	}

	// The prober now trusts the new root alone too.
	if err := g.setProberTrust(g.trust); err != nil {
		return rep, err
	}
	fmt.Fprintf(d.out, "      +%-7s the prober now trusts the new root only\n", since(rep.annotated, time.Now()))
	if err := g.prober.waitSuccesses(ctx, rep.newRoot, newRootProbes, time.Minute); err != nil {
		return rep, err
	}
	if rep.namespaces, err = d.runOutput(ctx, "guest-kubectl", nil, "kubectl", "--kubeconfig="+g.prober.kubeconfig, "get", "namespaces"); err != nil {
		return rep, err
	}
	g.prober.stop()
	probes, failures, _ := g.prober.counts()
	if rep.getCA, err = d.runOutput(ctx, "kubectl", nil, "kubectl", "--kubeconfig="+d.env.Kubeconfig, "get", "-n", ns, "pkica", "-o", "wide"); err != nil {
		return rep, err
	}
	if rep.events, rep.warnings, err = d.namespaceEvents(ctx, rep.annotated); err != nil {
		return rep, err
	}
	if len(failures) > 0 {
		return rep, fmt.Errorf("%d of %d requests to the guest cluster failed, the first at +%v: %v", len(failures), probes,
			since(rep.annotated, failures[0].at), failures[0].err)
	}
	if rep.finalCA.Status.Root == nil || rep.finalCA.Status.Root.FingerprintSHA256 != rep.newRoot {
		return rep, fmt.Errorf("after the rotation status.root is %v, want the new root %s", rep.finalCA.Status.Root, rep.newRoot)
	}
	if len(rep.warnings) > 0 {
		return rep, fmt.Errorf("Warning events in namespace %s: %s", ns, strings.Join(rep.warnings, "; "))
	}
	return rep, nil
}

// namespaceEvents returns the reasons of the Normal events of the CA in the demo's namespace
// since the time since, in order, and every Warning event there since then (on any object): a
// rotation that went as it should has none. (Before it, the examples' Certificates may have
// warned that the CA was not Ready yet.)
func (d *demo) namespaceEvents(ctx context.Context, since time.Time) (string, []string, error) {
	list, err := d.env.KubeClient.CoreV1().Events(d.opts.namespace).List(ctx, metav1ListAll)
	if err != nil {
		return "", nil, err
	}
	slices.SortStableFunc(list.Items, func(a, b corev1.Event) int {
		return eventTime(a).Compare(eventTime(b))
	})
	var normal, warnings []string
	for _, e := range list.Items {
		if eventTime(e).Before(since.Truncate(time.Second)) {
			continue
		}
		what := e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name
		switch {
		case e.Type == corev1.EventTypeWarning:
			warnings = append(warnings, fmt.Sprintf("%s %s: %s", what, e.Reason, e.Message))
		case e.InvolvedObject.Kind == "CertificateAuthority":
			normal = append(normal, e.Reason)
		}
	}
	return strings.Join(normal, ", "), warnings, nil
}

// eventTime is when e last happened.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func trackerPhases(t *caTracker) []phaseSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]phaseSeen(nil), t.phases...)
}

func since(start, t time.Time) string {
	return t.Sub(start).Round(100 * time.Millisecond).String()
}

func countHealthy(health []string) int {
	n := 0
	for _, h := range health {
		if h == "" {
			n++
		}
	}
	return n
}

// printRotation prints the rotation's report.
func (d *demo) printRotation(r *rotationReport) {
	if r == nil {
		return
	}
	short := func(fp string) string {
		if fp == "" {
			return "-"
		}
		if len(fp) > 16 {
			return fp[:16] + "…"
		}
		return fp
	}
	var phases []string
	for _, p := range r.phases {
		phases = append(phases, fmt.Sprintf("%s +%s", p.phase, since(r.annotated, p.at)))
	}
	etcdSteps := 0
	for _, rs := range r.restarts {
		if countHealthy(rs.etcdHealth) == len(rs.etcdHealth) {
			etcdSteps++
		}
	}
	fmt.Fprintf(d.out, `
The root rotation under a running guest cluster (3 etcd members, 2 kube-apiservers behind %s):
  old root   sha256:%s
  new root   sha256:%s
  phases     %s
  restarts   %d, one at a time; every etcd member healthy after %d of them
  requests   %d (every %v, a new TLS connection each): %d failed; %s
  forwarder  connections per kube-apiserver %v, %d dial(s) failed over to the next
  events     %s; %d Warning(s) in namespace %s since the annotation
`, r.forwarder, short(r.oldRoot), short(r.newRoot), strings.Join(phases, ", "), len(r.restarts), etcdSteps,
		r.probes, probeInterval, len(r.failures), trustSummary(r), r.served, r.dialFailures, r.events, len(r.warnings), d.opts.namespace)
	for _, w := range r.warnings {
		fmt.Fprintf(d.out, "    %s\n", w)
	}
	for i, f := range r.failures {
		if i == 5 {
			fmt.Fprintf(d.out, "    ... %d more\n", len(r.failures)-i)
			break
		}
		fmt.Fprintf(d.out, "    failed at +%s: %v\n", since(r.annotated, f.at), f.err)
	}
	if r.getCA != "" {
		fmt.Fprintf(d.out, "\n$ kubectl get pkica -n %s -o wide\n%s\n", d.opts.namespace, indent(strings.TrimRight(r.getCA, "\n")))
	}
	if r.namespaces != "" {
		fmt.Fprintf(d.out, "\n$ KUBECONFIG=%s kubectl get namespaces    # the new root only\n%s\n", relToCwd(r.kubeconfig), indent(strings.TrimRight(r.namespaces, "\n")))
	}
	if len(r.failures) == 0 && r.newRoot != "" && r.namespaces != "" {
		fmt.Fprintf(d.out, "\n%s\n", RotationSuccessMarker)
	}
}

// trustSummary says how many requests succeeded trusting the old root only and the new
// root only.
func trustSummary(r *rotationReport) string {
	return fmt.Sprintf("%d answered trusting the old root only, then %d the new root only", r.byTrust[r.oldRoot], r.byTrust[r.newRoot])
}
