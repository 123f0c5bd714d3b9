package ca

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

func TestRootRequestTag(t *testing.T) {
	ca := newCA(func(ca *v1alpha1.CertificateAuthority) {
		ca.Annotations = map[string]string{v1alpha1.AnnotationRotateRoot: "2026-11-28"}
	})
	tag := rootRequestTag(ca)
	assert.Regexp(t, `^r[0-9a-f]{8}$`, tag)
	assert.Equal(t, tag, rootRequestTag(ca.DeepCopy()), "a value always names the same rotation")
	assert.Empty(t, rootRequestTag(newCA()), "no annotation, no request")
	assert.Equal(t, "a0123abcd", rootAutomaticTag("0123abcdef99"))
}

func TestRootStartDecision(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	const fp = "0123abcdef"
	auto := rootAutomaticTag(fp)
	completed := func(tag string, ago time.Duration) *v1alpha1.RootRotationStatus {
		return &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationCompleted, Tag: tag, CompletionTime: &metav1.Time{Time: now.Add(-ago)}}
	}
	running := &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationMoving, Tag: "rold"}
	far := now.Add(1000 * time.Hour) // the root's end, far from any rotateBefore below
	tests := map[string]struct {
		in   RootStartInput
		want RootStart // zero: nothing due
	}{
		"no request and no rotateBefore starts nothing": {
			in: RootStartInput{RootNotAfter: now.Add(time.Hour)},
		},
		"a new request starts a rotation tagged by it": {
			in:   RootStartInput{RequestTag: "r1"},
			want: RootStart{Start: true, Trigger: v1alpha1.RootRotationRequested, Tag: "r1"},
		},
		"a request answered by the last rotation starts nothing": {
			in: RootStartInput{RequestTag: "r1", Last: completed("r1", time.Hour)},
		},
		"a request answered before an automatic rotation (which retired its root) starts nothing": {
			in: RootStartInput{RequestTag: "r1", Last: func() *v1alpha1.RootRotationStatus {
				last := completed(auto, time.Hour)
				last.LastRequestTag = "r1"
				return last
			}()},
		},
		"a request whose root already exists in the root mount starts nothing": {
			in: RootStartInput{RequestTag: "r1", Exists: map[string]bool{"r1": true}},
		},
		"a request while a rotation runs waits for it": {
			in:   RootStartInput{RequestTag: "r2", Last: running},
			want: RootStart{Waiting: true, Trigger: v1alpha1.RootRotationRequested, Tag: "r2"},
		},
		"a request within the floor after the last completion is held until the floor ends": {
			in:   RootStartInput{RequestTag: "r2", Last: completed("r1", time.Minute)},
			want: RootStart{HeldUntil: now.Add(RotationFloor - time.Minute), Trigger: v1alpha1.RootRotationRequested, Tag: "r2"},
		},
		"a request past the floor starts": {
			in:   RootStartInput{RequestTag: "r2", Last: completed("r1", RotationFloor)},
			want: RootStart{Start: true, Trigger: v1alpha1.RootRotationRequested, Tag: "r2"},
		},
		"a root inside rotateBefore starts an automatic rotation tagged by its fingerprint": {
			in:   RootStartInput{RootFingerprint: fp, RootNotAfter: now.Add(time.Hour), RotateBefore: 2 * time.Hour},
			want: RootStart{Start: true, Trigger: v1alpha1.RootRotationAutomatic, Tag: auto},
		},
		"a root outside rotateBefore starts nothing": {
			in: RootStartInput{RootFingerprint: fp, RootNotAfter: far, RotateBefore: 2 * time.Hour},
		},
		"a root already rotated away automatically is not rotated again": {
			in: RootStartInput{RootFingerprint: fp, RootNotAfter: now.Add(time.Hour), RotateBefore: 2 * time.Hour, Last: completed(auto, time.Hour)},
		},
		"an automatic rotation whose new root exists (status lost) is not started again": {
			in: RootStartInput{RootFingerprint: fp, RootNotAfter: now.Add(time.Hour), RotateBefore: 2 * time.Hour, Exists: map[string]bool{auto: true}},
		},
		"a request goes before a due automatic rotation": {
			in:   RootStartInput{RequestTag: "r1", RootFingerprint: fp, RootNotAfter: now.Add(time.Hour), RotateBefore: 2 * time.Hour},
			want: RootStart{Start: true, Trigger: v1alpha1.RootRotationRequested, Tag: "r1"},
		},
		"an automatic rotation due while one runs waits": {
			in:   RootStartInput{RootFingerprint: fp, RootNotAfter: now.Add(time.Hour), RotateBefore: 2 * time.Hour, Last: running},
			want: RootStart{Waiting: true, Trigger: v1alpha1.RootRotationAutomatic, Tag: auto},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.in.Now = now
			got := RootStartDecision(tc.in)
			got.Why = ""
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRootPhase(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	old := &issuer{ID: "old", Cert: &x509.Certificate{}}
	newRoot := &issuer{ID: "new", Cert: &x509.Certificate{}}
	cross := &issuer{ID: "cross", Cert: &x509.Certificate{}}
	rot := func(phase v1alpha1.RootRotationPhase, overlapEnd *time.Time) *v1alpha1.RootRotationStatus {
		r := &v1alpha1.RootRotationStatus{Phase: phase, Tag: "r1"}
		if overlapEnd != nil {
			r.OverlapEnd = &metav1.Time{Time: *overlapEnd}
		}
		return r
	}
	later, earlier := now.Add(time.Minute), now.Add(-time.Second)
	tests := map[string]struct {
		rot        *v1alpha1.RootRotationStatus
		view       RootView
		counts     RootCounts
		wantPhase  v1alpha1.RootRotationPhase
		wantAction RootAction
		wantBroken bool
	}{
		"a rotation just started, with no new root in Vault, makes it": {
			rot: rot(v1alpha1.RootRotationPreparing, nil), view: RootView{DefaultID: "old", OldRoot: old},
			wantPhase: v1alpha1.RootRotationPreparing, wantAction: RootMakeNew,
		},
		"a new root without its cross is cross-signed": {
			rot: rot(v1alpha1.RootRotationPreparing, nil), view: RootView{DefaultID: "old", OldRoot: old, NewRoot: newRoot},
			wantPhase: v1alpha1.RootRotationPreparing, wantAction: RootCrossSign,
		},
		"new root and cross, old default, some Certificates without the bundle: Trusting waits": {
			rot: rot(v1alpha1.RootRotationPreparing, nil), view: RootView{DefaultID: "old", OldRoot: old, NewRoot: newRoot, Cross: cross},
			counts:    RootCounts{Trusting: 3, Total: 10},
			wantPhase: v1alpha1.RootRotationTrusting, wantAction: RootWait,
		},
		"every Ready Certificate carries the bundle: the new root becomes the default": {
			rot: rot(v1alpha1.RootRotationTrusting, nil), view: RootView{DefaultID: "old", OldRoot: old, NewRoot: newRoot, Cross: cross},
			counts:    RootCounts{Trusting: 10, Total: 10},
			wantPhase: v1alpha1.RootRotationMoving, wantAction: RootMove,
		},
		"a CA with no Certificates moves at once": {
			rot: rot(v1alpha1.RootRotationPreparing, nil), view: RootView{DefaultID: "old", OldRoot: old, NewRoot: newRoot, Cross: cross},
			wantPhase: v1alpha1.RootRotationMoving, wantAction: RootMove,
		},
		"the new root is the default although status still says Trusting (crash after step 6): Moving": {
			rot: rot(v1alpha1.RootRotationTrusting, nil), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			counts:    RootCounts{Trusting: 10, Moved: 2, Total: 10},
			wantPhase: v1alpha1.RootRotationMoving, wantAction: RootWait,
		},
		"every Ready Certificate moved: the overlap starts": {
			rot: rot(v1alpha1.RootRotationMoving, nil), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			counts:    RootCounts{Moved: 10, Total: 10},
			wantPhase: v1alpha1.RootRotationOverlap, wantAction: RootStartOverlap,
		},
		"within the overlap nothing happens": {
			rot: rot(v1alpha1.RootRotationOverlap, &later), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			wantPhase: v1alpha1.RootRotationOverlap, wantAction: RootWait,
		},
		"a Certificate that falls back within the overlap does not end it": {
			rot: rot(v1alpha1.RootRotationOverlap, &later), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			counts:    RootCounts{Moved: 9, Total: 10},
			wantPhase: v1alpha1.RootRotationOverlap, wantAction: RootWait,
		},
		"the overlap over: the old root is retired": {
			rot: rot(v1alpha1.RootRotationOverlap, &earlier), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			wantPhase: v1alpha1.RootRotationRetiring, wantAction: RootRetire,
		},
		"status says Retiring: retiring goes on whatever Vault still holds": {
			rot: rot(v1alpha1.RootRotationRetiring, &earlier), view: RootView{DefaultID: "new", OldRoot: old, NewRoot: newRoot, Cross: cross},
			wantPhase: v1alpha1.RootRotationRetiring, wantAction: RootRetire,
		},
		"the old root gone from Vault (crash inside retiring) finishes retiring": {
			rot: rot(v1alpha1.RootRotationOverlap, &later), view: RootView{DefaultID: "new", NewRoot: newRoot},
			wantPhase: v1alpha1.RootRotationRetiring, wantAction: RootRetire,
		},
		"the new root missing once issuance moved needs a person": {
			rot: rot(v1alpha1.RootRotationMoving, nil), view: RootView{DefaultID: "", OldRoot: old},
			wantPhase: v1alpha1.RootRotationMoving, wantAction: RootWait, wantBroken: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := RootPhase(tc.rot, tc.view, tc.counts, now)
			assert.Equal(t, tc.wantPhase, got.Phase)
			assert.Equal(t, tc.wantAction, got.Action)
			assert.Equal(t, tc.wantBroken, got.Broken != "", got.Broken)
			if tc.wantAction == RootWait && !tc.wantBroken {
				assert.NotEmpty(t, got.Waits, "a waiting phase says what it waits for")
			}
		})
	}
}

func TestStallTrackerWarnsOncePerStall(t *testing.T) {
	key := cache.ObjectName{Namespace: "team-a", Name: "ca"}
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	s := newStallTracker()
	n := RootCounts{Trusting: 3, Total: 10}
	warn, lookAt := s.note(key, v1alpha1.RootRotationTrusting, n, t0)
	assert.False(t, warn)
	assert.Equal(t, t0.Add(stallAfter), lookAt, "the tracker asks to look again when a stall would begin")
	warn, _ = s.note(key, v1alpha1.RootRotationTrusting, n, t0.Add(stallAfter-time.Second))
	assert.False(t, warn, "not yet")
	warn, lookAt = s.note(key, v1alpha1.RootRotationTrusting, n, t0.Add(stallAfter))
	assert.True(t, warn, "the same counts for stallAfter: a stall")
	assert.True(t, lookAt.IsZero())
	warn, _ = s.note(key, v1alpha1.RootRotationTrusting, n, t0.Add(2*stallAfter))
	assert.False(t, warn, "a stall is warned about once")
	n.Trusting++
	warn, lookAt = s.note(key, v1alpha1.RootRotationTrusting, n, t0.Add(2*stallAfter))
	assert.False(t, warn, "progress starts the clock again")
	assert.Equal(t, t0.Add(3*stallAfter), lookAt)
}

func TestStripCertificateKeepsOnlyWhatIsCounted(t *testing.T) {
	cert := &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", ResourceVersion: "7",
			Labels: map[string]string{"big": "label"}, Annotations: map[string]string{"big": "annotation"}},
		Spec: v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: "web-tls",
			CommonName: "web.example.com", AltNames: []string{"a.example.com"}},
		Status: v1alpha1.CertificateStatus{SerialNumber: "01", RootFingerprintSHA256: "aa", TrustedRootsSHA256: []string{"aa", "bb"},
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Issued", Message: "long"},
				{Type: v1alpha1.ConditionIssuing, Status: metav1.ConditionFalse}}},
	}
	got, err := stripCertificate(cert)
	require.NoError(t, err)
	assert.Equal(t, &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", ResourceVersion: "7"},
		Spec:       v1alpha1.CertificateSpec{CARef: v1alpha1.CARef{Name: "ca"}},
		Status: v1alpha1.CertificateStatus{RootFingerprintSHA256: "aa", TrustedRootsSHA256: []string{"aa", "bb"},
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}},
	}, got)
	assert.True(t, factsOf(cert).equal(factsOf(got.(*v1alpha1.Certificate))), "stripping changes no counted fact")
	again, err := stripCertificate(got)
	require.NoError(t, err)
	assert.Equal(t, got, again, "stripping twice is stripping once")
}

func TestRootRotationStatusCarriesTheLastRequestOver(t *testing.T) {
	now := time.Now()
	old := &v1alpha1.CACertificateStatus{FingerprintSHA256: "00"}
	requested := rootRotationStatusOf(RootStart{Trigger: v1alpha1.RootRotationRequested, Tag: "r1"}, nil, old, now)
	if requested.LastRequestTag != "r1" {
		t.Fatalf("a requested rotation records lastRequestTag %q, want r1", requested.LastRequestTag)
	}
	requested.Phase = v1alpha1.RootRotationCompleted
	automatic := rootRotationStatusOf(RootStart{Trigger: v1alpha1.RootRotationAutomatic, Tag: "a00"}, requested, old, now)
	if automatic.LastRequestTag != "r1" {
		t.Errorf("an automatic rotation after a request records lastRequestTag %q, want r1 carried over", automatic.LastRequestTag)
	}
}
