package rotation

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// killPhases are the phases an operator is killed in: every phase before Completed.
var killPhases = []v1alpha1.RootRotationPhase{
	v1alpha1.RootRotationPreparing, v1alpha1.RootRotationTrusting, v1alpha1.RootRotationMoving,
	v1alpha1.RootRotationOverlap, v1alpha1.RootRotationRetiring,
}

// killCase is one CA whose rotation has operator op killed when it first reaches phase.
type killCase struct {
	phase v1alpha1.RootRotationPhase
	op    string
	ca    string
	certs []string

	oldRoot *x509.Certificate
	// killedIn is the phase the CA was in while op was dead.
	killedIn v1alpha1.RootRotationPhase
	// seen are the phases the CA went through, in order.
	seen []v1alpha1.RootRotationPhase
}

// killTest is the crash test: a CA per phase and operator, rotated at the same time.
type killTest struct {
	ns    string
	cases []*killCase
}

// prepareKillTest creates the CAs, two Certificates each.
func prepareKillTest(ctx context.Context, t *testing.T) *killTest {
	k := &killTest{ns: "rotation-kill"}
	createNamespace(ctx, t, k.ns)
	for _, p := range killPhases {
		for _, op := range []string{caOperator, certOperator} {
			c := &killCase{phase: p, op: op, ca: "kill-" + strings.ToLower(string(p)) + "-" + strings.TrimSuffix(op, "-operator")}
			c.certs = createCA(ctx, t, k.ns, c.ca, 2)
			k.cases = append(k.cases, c)
		}
	}
	return k
}

// run requests every rotation at once and, for each case, SIGKILLs its operator when the CA
// is first seen in its phase and starts it again (a kill that waits for another kill of the
// same operator to finish lands later). Every operator kill interrupts every rotation under
// way, the other tests' too. Each rotation must then go through its phases in order, complete,
// stay completed, and leave exactly one new root: one issuer and one key in the root mount,
// and in Vault's audit log root/rotate/internal asked only under the rotation's name, exactly
// one such request succeeding (see checkOneRootMade for a request a kill cut off).
func (k *killTest) run(ctx context.Context, t *testing.T, ops *operators) {
	for _, c := range k.cases {
		waitReady(ctx, t, k.ns, c.ca, c.certs)
	}
	pki := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(k.ns)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watches := map[*killCase]*caWatch{}
	for _, c := range k.cases {
		ca, err := pki.Get(ctx, c.ca, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.oldRoot, err = rootOf(ca); err != nil {
			t.Fatal(err)
		}
		watches[c] = watchCA(watchCtx, t, k.ns, c.ca)
	}
	for _, c := range k.cases {
		if err := requestRotation(ctx, pkiClient(t), k.ns, c.ca, "kill-1"); err != nil {
			t.Fatal(err)
		}
	}

	// completed is closed when every rotation completed; until then each CA is still watched,
	// so a completed rotation that starts again is seen.
	var completing sync.WaitGroup
	completing.Add(len(k.cases))
	completed := make(chan struct{})
	go func() { completing.Wait(); close(completed) }()
	var wg sync.WaitGroup
	for _, c := range k.cases {
		wg.Go(func() { k.follow(ctx, t, ops, c, watches[c], &completing, completed) })
	}
	wg.Wait()
	stopWatching()
	if t.Failed() {
		return
	}

	var report []string
	for _, c := range k.cases {
		report = append(report, fmt.Sprintf("%s: %s killed at first sight of %s, the CA in %s while it was dead; phases seen %v", c.ca, c.op, c.phase, c.killedIn, c.seen))
	}
	t.Logf("kills:\n%s", strings.Join(report, "\n"))
	for _, c := range k.cases {
		t.Run(c.ca, func(t *testing.T) { checkCompleted(ctx, t, k.ns, c.ca, c.certs, c.oldRoot) })
	}
}

// follow watches one case's CA: kills its operator at its phase, records the phases, and
// after Completed checks that the rotation stays done until every case completed.
func (k *killTest) follow(ctx context.Context, t *testing.T, ops *operators, c *killCase, w *caWatch,
	completing *sync.WaitGroup, completed <-chan struct{}) {
	done := false
	defer func() {
		if !done {
			completing.Done() // the failure is reported below; let the others finish
		}
	}()
	var last v1alpha1.RootRotationPhase
	var final *v1alpha1.RootRotationStatus
	killed := false
	for {
		var ca *v1alpha1.CertificateAuthority
		select {
		case ca = <-w.C:
		case <-completed:
			return
		case <-ctx.Done():
			t.Errorf("%s: rotation not completed before the deadline; phases seen %v (killed: %v)", c.ca, c.seen, killed)
			return
		}
		if ca == nil {
			if done {
				return
			}
			t.Errorf("%s: the watch ended before the rotation completed (%v); phases seen %v", c.ca, w.Err(), c.seen)
			return
		}
		p := phase(ca)
		if p != last {
			if phaseRank[p] < phaseRank[last] {
				t.Errorf("%s: phase went back from %s to %s", c.ca, last, p)
			}
			last = p
			c.seen = append(c.seen, p)
		}
		if final != nil {
			if r := ca.Status.RootRotation; r == nil || r.Phase != v1alpha1.RootRotationCompleted || r.Tag != final.Tag || !r.StartTime.Equal(&final.StartTime) {
				t.Errorf("%s: after completing, the rotation changed to %+v", c.ca, r)
			}
			continue
		}
		if p == c.phase && !killed {
			killed = true
			err := ops.kill(ctx, t, c.op, func() {
				now, err := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(k.ns).Get(ctx, c.ca, metav1.GetOptions{})
				if err == nil {
					c.killedIn = phase(now)
				}
			})
			if err != nil {
				t.Errorf("%s: %v", c.ca, err)
				return
			}
			t.Logf("%s: %s killed at first sight of %s (CA in %s while it was dead)", c.ca, c.op, c.phase, c.killedIn)
		}
		if p == v1alpha1.RootRotationCompleted {
			if !killed {
				t.Errorf("%s: completed without being seen in %s, so %s was never killed in it; phases seen %v", c.ca, c.phase, c.op, c.seen)
			}
			final = ca.Status.RootRotation.DeepCopy()
			done = true
			completing.Done()
		}
	}
}

// rootOf returns the root ca publishes before a rotation: its trust bundle's single
// certificate, which must be status.root.
func rootOf(ca *v1alpha1.CertificateAuthority) (*x509.Certificate, error) {
	bundle, err := contract.TrustBundle(ca)
	if err != nil {
		return nil, err
	}
	if len(bundle) != 1 || ca.Status.Root == nil || fingerprints(bundle...)[0] != ca.Status.Root.FingerprintSHA256 {
		return nil, fmt.Errorf("CA %s publishes %v, want status.root %+v alone", ca.Name, fingerprints(bundle...), ca.Status.Root)
	}
	return bundle[0], nil
}
