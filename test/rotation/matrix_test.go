package rotation

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// trustMatrix is the trust test: one CA with ten Certificates, looked at as each kind of client
// sees it before the rotation, in every phase and after.
type trustMatrix struct {
	ns, name string
	certs    []string

	oldRoot, newRoot *x509.Certificate
	// before are the Secrets as they were before the rotation.
	before map[string]secretView
}

// prepareTrustMatrix creates the CA and its Certificates.
func prepareTrustMatrix(ctx context.Context, t *testing.T) *trustMatrix {
	m := &trustMatrix{ns: "rotation-matrix", name: "matrix"}
	createNamespace(ctx, t, m.ns)
	m.certs = createCA(ctx, t, m.ns, m.name, 10)
	return m
}

// run checks every Secret against a client holding only the old root, one holding only the
// new root and one holding the Secret's own ca.crt: before the rotation, at the first sight of
// each phase and after it. The old root must verify every chain until Retiring (the chains
// issued under the new root carry its certificate cross-signed by the old one); the new root
// exactly the chains issued under it; ca.crt every chain, always. Each Secret is re-issued
// exactly once, under the new root, and never while its trust is refreshed (Trusting).
func (m *trustMatrix) run(ctx context.Context, t *testing.T) {
	waitReady(ctx, t, m.ns, m.name, m.certs)
	v, err := readView(ctx, t, m.ns, m.name, m.certs)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.bundle) != 1 || v.ca.Status.Root == nil || contract.Fingerprint(v.bundle[0]) != v.ca.Status.Root.FingerprintSHA256 {
		t.Fatalf("before the rotation the ConfigMap publishes %v, want status.root %+v alone", fingerprints(v.bundle...), v.ca.Status.Root)
	}
	m.oldRoot = v.bundle[0]
	m.before = v.secrets
	m.check(ctx, t, "before", v)

	serials := watchSerials(ctx, t, m.ns)
	w := watchCA(ctx, t, m.ns, m.name)
	if err := requestRotation(ctx, pkiClient(t), m.ns, m.name, "matrix-1"); err != nil {
		t.Fatal(err)
	}
	seen := map[v1alpha1.RootRotationPhase]bool{}
	var order []v1alpha1.RootRotationPhase
	last := v1alpha1.RootRotationPhase("")
	for ca := range w.C {
		p := phase(ca)
		if phaseRank[p] < phaseRank[last] {
			t.Errorf("phase went back from %s to %s", last, p)
		}
		last = p
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		order = append(order, p)
		v, err := readView(ctx, t, m.ns, m.name, m.certs)
		if err != nil {
			t.Fatal(err)
		}
		if p == v1alpha1.RootRotationTrusting {
			// Trust is refreshed after the phase begins: look again once every Secret holds the
			// bundle, or the phase is over.
			v = m.trustRefreshed(ctx, t, v)
		}
		m.check(ctx, t, fmt.Sprintf("phase %s (read in %s)", p, phase(v.ca)), v)
		if p == v1alpha1.RootRotationCompleted {
			break
		}
	}
	if last != v1alpha1.RootRotationCompleted {
		t.Fatalf("the rotation did not complete (%v, %v): phases seen %v", ctx.Err(), w.Err(), order)
	}
	t.Logf("phases seen: %v", order)
	for _, p := range []v1alpha1.RootRotationPhase{v1alpha1.RootRotationTrusting, v1alpha1.RootRotationMoving,
		v1alpha1.RootRotationOverlap, v1alpha1.RootRotationCompleted} {
		if !seen[p] {
			t.Errorf("phase %s never seen in status (seen %v)", p, order)
		}
	}

	newRoot := checkCompleted(ctx, t, m.ns, m.name, m.certs, m.oldRoot)
	v, err = readView(ctx, t, m.ns, m.name, m.certs)
	if err != nil {
		t.Fatal(err)
	}
	m.check(ctx, t, "after", v)
	if m.newRoot == nil || !m.newRoot.Equal(newRoot) {
		t.Errorf("the root published in Trusting is not the root the rotation completed with")
	}

	reissues, err := serials.result()
	if err != nil {
		t.Error(err)
	}
	count := map[string]int{}
	for _, r := range reissues {
		count[r.secret]++
		if !issuedUnder(r.chain, newRoot) {
			t.Errorf("Secret %s re-issued (serial %s) under another root than the new one", r.secret, r.serial)
		}
	}
	for _, c := range m.certs {
		if count[c] != 1 {
			t.Errorf("Secret %s re-issued %d times during the rotation, want once", c, count[c])
		}
	}
}

// check asserts what every client of the CA must see in view v, whose label says when it was
// taken; phase-specific expectations follow the phase v.ca was read in.
func (m *trustMatrix) check(ctx context.Context, t *testing.T, label string, v *view) {
	t.Helper()
	p := phase(v.ca)
	newRoot, err := newRootOf(v.ca)
	if err != nil {
		t.Errorf("%s: %v", label, err)
	}
	if newRoot != nil && m.newRoot == nil {
		m.newRoot = newRoot
		// Nothing issued before the rotation may verify against the new root.
		for _, name := range sortedKeys(m.before) {
			if verify(m.before[name].chain, newRoot) == nil {
				t.Errorf("before: Secret %s verifies against the new root alone", name)
			}
		}
	}
	newRoot = m.newRoot
	if newRoot == nil && phaseRank[p] >= phaseRank[v1alpha1.RootRotationTrusting] {
		t.Errorf("%s: no new root published in phase %s", label, p)
		return
	}

	// The published bundle and status.root, by phase.
	var wantBundle []string
	wantRoot := m.oldRoot
	switch rank := phaseRank[p]; {
	case rank <= phaseRank[v1alpha1.RootRotationPreparing]:
		wantBundle = fingerprints(m.oldRoot)
	case rank <= phaseRank[v1alpha1.RootRotationOverlap]:
		wantBundle = fingerprints(m.oldRoot, newRoot)
		if rank >= phaseRank[v1alpha1.RootRotationMoving] {
			wantRoot = newRoot
		}
	default:
		wantBundle, wantRoot = fingerprints(newRoot), newRoot
	}
	if bundle, err := contract.TrustBundle(v.ca); err != nil {
		t.Errorf("%s: %v", label, err)
	} else if got := fingerprints(bundle...); !slices.Equal(got, wantBundle) {
		t.Errorf("%s: status.trustBundle holds %v, want %v", label, got, wantBundle)
	}
	if wantRoot != nil && (v.ca.Status.Root == nil || v.ca.Status.Root.FingerprintSHA256 != contract.Fingerprint(wantRoot)) {
		t.Errorf("%s: status.root %+v, want %s", label, v.ca.Status.Root, contract.Fingerprint(wantRoot))
	}
	if _, err := bundlePublished(ctx, t, m.ns, m.name); err != nil {
		t.Errorf("%s: %v", label, err)
	}

	refreshed := 0
	for _, name := range sortedKeys(v.secrets) {
		s := v.secrets[name]
		if err := verify(s.chain, s.trust...); err != nil {
			t.Errorf("%s: Secret %s does not verify against its own ca.crt (%v): %v", label, name, fingerprints(s.trust...), err)
		}
		if phaseRank[p] < phaseRank[v1alpha1.RootRotationRetiring] {
			if err := verify(s.chain, m.oldRoot); err != nil {
				t.Errorf("%s: Secret %s does not verify against the old root alone: %v", label, name, err)
			}
		}
		under := newRoot != nil && issuedUnder(s.chain, newRoot)
		if newRoot != nil {
			if err := verify(s.chain, newRoot); (err == nil) != under {
				t.Errorf("%s: Secret %s issued under the new root: %v, but verifying against the new root alone: %v", label, name, under, err)
			}
		}
		if s.serial != m.before[name].serial && !under {
			t.Errorf("%s: Secret %s was re-issued (serial %s, was %s) but not under the new root", label, name, s.serial, m.before[name].serial)
		}
		if !v.stable {
			continue // the phase changed while the Secrets were read
		}
		switch p {
		case v1alpha1.RootRotationTrusting:
			if got, want := fingerprints(s.trust...), fingerprints(m.oldRoot, newRoot); slices.Equal(got, want) {
				refreshed++
			}
			if s.serial != m.before[name].serial {
				t.Errorf("%s: Secret %s re-issued in Trusting (serial %s, was %s): trust must be refreshed in place", label, name, s.serial, m.before[name].serial)
			}
		case v1alpha1.RootRotationMoving, v1alpha1.RootRotationOverlap:
			if got, want := fingerprints(s.trust...), fingerprints(m.oldRoot, newRoot); !slices.Equal(got, want) {
				t.Errorf("%s: Secret %s ca.crt holds %v, want both roots %v", label, name, got, want)
			}
		case "":
			if got, want := fingerprints(s.trust...), fingerprints(m.oldRoot); !slices.Equal(got, want) {
				t.Errorf("%s: Secret %s ca.crt holds %v, want the root %v", label, name, got, want)
			}
		}
	}
	if v.stable && p == v1alpha1.RootRotationTrusting {
		t.Logf("%s: %d of %d Secrets hold both roots, each with its certificate unchanged", label, refreshed, len(v.secrets))
	}
}

// trustRefreshed reads the CA's view again until every Secret's ca.crt holds the CA's
// trust bundle while the CA is still in Trusting, or the phase has moved on, and returns the
// last view (v if nothing is read in time).
func (m *trustMatrix) trustRefreshed(ctx context.Context, t *testing.T, v *view) *view {
	t.Helper()
	last := v
	_ = poll(ctx, 30*time.Second, func() error {
		v, err := readView(ctx, t, m.ns, m.name, m.certs)
		if err != nil {
			return err
		}
		last = v
		if !v.stable || phase(v.ca) != v1alpha1.RootRotationTrusting {
			return nil
		}
		bundle, err := contract.TrustBundle(v.ca)
		if err != nil {
			return nil // check reports it
		}
		for _, name := range sortedKeys(v.secrets) {
			if !slices.Equal(fingerprints(v.secrets[name].trust...), fingerprints(bundle...)) {
				return fmt.Errorf("Secret %s ca.crt not refreshed yet", name)
			}
		}
		return nil
	})
	return last
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
