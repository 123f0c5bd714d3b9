package rotation

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

const (
	// reissueInterval is the cert-operator's --rotation-reissue-interval in the rate test: a
	// bucket of rate 2/s and burst 1.
	reissueInterval = 500 * time.Millisecond
	// rateCertificates is how many Certificates move in the rate test.
	rateCertificates = 20
	// reissuesMetric counts the re-issues the bound let through.
	reissuesMetric = "clusterpki_rotation_reissues_total"
)

// rateTest is the re-issue rate test: one CA with twenty Certificates.
type rateTest struct {
	ns, name string
	certs    []string
}

// prepareRateTest creates the CA and its Certificates.
func prepareRateTest(ctx context.Context, t *testing.T) *rateTest {
	r := &rateTest{ns: "rotation-rate", name: "rate"}
	createNamespace(ctx, t, r.ns)
	r.certs = createCA(ctx, t, r.ns, r.name, rateCertificates)
	return r
}

// run replaces the cert-operator with one whose --rotation-reissue-interval is 500ms, rotates
// the CA and records, from a watch on the Secrets, when each Secret gets a certificate of a
// new serial, and from Vault's audit log when Vault received each sign request. Every
// Certificate moves once, under the new root; no second holds more than 1s/interval + burst
// = 3 sign requests, so twenty take at least 19 intervals (9.5s; asserted as 9s, for the
// scheduling of the operator's workers); status.rootRotation.moved never goes down; and the
// operator's counter of bounded re-issues says 20.
func (r *rateTest) run(ctx context.Context, t *testing.T, ops *operators) {
	waitReady(ctx, t, r.ns, r.name, r.certs)
	ca, err := pkiClient(t).ClusterpkiV1alpha1().CertificateAuthorities(r.ns).Get(ctx, r.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldRoot, err := rootOf(ca)
	if err != nil {
		t.Fatal(err)
	}
	certOp := ops.replace(ctx, t, certOperator, "--rotation-reissue-interval="+reissueInterval.String())
	if v, found, err := certOp.Metric(ctx, reissuesMetric); err != nil || !found || v != 0 {
		t.Fatalf("a new cert-operator serves %s = %v (served: %v, %v), want 0", reissuesMetric, v, found, err)
	}

	serials := watchSerials(ctx, t, r.ns)
	w := watchCA(ctx, t, r.ns, r.name)
	requested := time.Now()
	if err := requestRotation(ctx, pkiClient(t), r.ns, r.name, "rate-1"); err != nil {
		t.Fatal(err)
	}
	var moved []int32
	var newRootCA *v1alpha1.CertificateAuthority
	for ca := range w.C {
		rr := ca.Status.RootRotation
		if rr == nil || rr.Phase == "" {
			continue
		}
		if phaseRank[rr.Phase] >= phaseRank[v1alpha1.RootRotationTrusting] {
			if len(moved) == 0 || moved[len(moved)-1] != rr.Moved {
				moved = append(moved, rr.Moved)
			}
			newRootCA = ca
		}
		if phaseRank[rr.Phase] >= phaseRank[v1alpha1.RootRotationOverlap] {
			break
		}
	}
	if newRootCA == nil || phaseRank[phase(newRootCA)] < phaseRank[v1alpha1.RootRotationOverlap] {
		t.Fatalf("the rotation did not reach Overlap (%v, %v); moved went %v", ctx.Err(), w.Err(), moved)
	}
	newRoot, err := newRootOf(newRootCA)
	if err != nil || newRoot == nil {
		t.Fatalf("new root: %v", err)
	}
	if newRoot.Equal(oldRoot) {
		t.Fatal("the new root is the old root")
	}
	t.Logf("moved, as status reported it: %v", moved)
	for i := 1; i < len(moved); i++ {
		if moved[i] < moved[i-1] {
			t.Errorf("status.rootRotation.moved went down from %d to %d (%v)", moved[i-1], moved[i], moved)
		}
	}
	if last := moved[len(moved)-1]; last != rateCertificates {
		t.Errorf("status.rootRotation.moved reached %d at Overlap, want %d", last, rateCertificates)
	}

	// The last re-issue may reach the watch a moment after the CA's Overlap.
	var reissues []reissue
	eventually(ctx, t, 10*time.Second, "every Secret re-issued", func() error {
		var err error
		if reissues, err = serials.result(); err != nil {
			return err
		}
		if len(reissues) < rateCertificates {
			return fmt.Errorf("%d of %d Secrets re-issued", len(reissues), rateCertificates)
		}
		return nil
	})
	time.Sleep(2 * reissueInterval) // a re-issue beyond the twentieth would show by now
	reissues, _ = serials.result()
	count := map[string]int{}
	for _, ri := range reissues {
		count[ri.secret]++
		if !issuedUnder(ri.chain, newRoot) {
			t.Errorf("Secret %s re-issued under another root than the new one", ri.secret)
		}
	}
	for _, c := range r.certs {
		if count[c] != 1 {
			t.Errorf("Secret %s re-issued %d times, want once", c, count[c])
		}
	}
	if len(reissues) != rateCertificates {
		t.Errorf("%d re-issues, want %d", len(reissues), rateCertificates)
	}

	var seen []time.Duration
	for _, ri := range reissues {
		seen = append(seen, ri.at.Sub(reissues[0].at).Round(time.Millisecond))
	}
	t.Logf("re-issues seen on the Secrets at %v", seen)

	// The bound spaces the requests to Vault; a Secret is written after Vault answers, so the
	// Secrets' times also carry Vault's and the API server's latency, which on a loaded machine
	// can bring two writes within milliseconds of each other. The spacing is measured where the
	// bound acts: when Vault received each sign request, from its audit log.
	signs, err := signRequests(ca.Status.IssuingMount, requested)
	if err != nil {
		t.Fatal(err)
	}
	if len(signs) != rateCertificates {
		t.Errorf("Vault received %d sign requests for the CA after the rotation was requested, want %d", len(signs), rateCertificates)
	}
	if len(signs) == 0 {
		return
	}
	// No window of a second holds more than the bucket lets through: 1s/interval, plus burst 1.
	const maxPerSecond = int(time.Second/reissueInterval) + 1
	var offsets []time.Duration
	for i, at := range signs {
		offsets = append(offsets, at.Sub(signs[0]).Round(time.Millisecond))
		n := 0
		for _, other := range signs[i:] {
			if other.Sub(at) < time.Second {
				n++
			}
		}
		if n > maxPerSecond {
			t.Errorf("%d sign requests in the second from %v, want at most %d", n, at.Sub(signs[0]).Round(time.Millisecond), maxPerSecond)
		}
	}
	t.Logf("sign requests received by Vault at %v", offsets)
	span := signs[len(signs)-1].Sub(signs[0])
	if minSpan := 9 * time.Second; span < minSpan {
		t.Errorf("%d sign requests took %v, want at least %v at one per %v", len(signs), span, minSpan, reissueInterval)
	}
	t.Logf("%d re-issues signed over %v", len(signs), span.Round(time.Millisecond))

	if v, found, err := certOp.Metric(ctx, reissuesMetric); err != nil || !found || v != rateCertificates {
		t.Errorf("the cert-operator serves %s = %v (served: %v, %v), want %d", reissuesMetric, v, found, err, rateCertificates)
	}
}
