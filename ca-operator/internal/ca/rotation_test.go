package ca

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// named returns iss with its issuer name set.
func named(iss *issuer, name string) *issuer {
	c := *iss
	c.Name = name
	return &c
}

func TestIssuingDecision(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rootCA := selfSigned(t, now.Add(-time.Hour), 10*365*24*time.Hour, nil)
	otherRoot := selfSigned(t, now.Add(-time.Hour), 10*365*24*time.Hour, nil)
	// A root with 90 hours left: every issuing CA made now would live 89h, inside a 100h window.
	shortRootCA := selfSigned(t, now.Add(-time.Hour), 91*time.Hour, nil)
	root, shortRoot := rootCA.issuer, shortRootCA.issuer
	fresh := selfSigned(t, now.Add(-time.Hour), 300*time.Hour, rootCA).issuer
	old := selfSigned(t, now.Add(-250*time.Hour), 300*time.Hour, rootCA).issuer
	foreign := selfSigned(t, now.Add(-time.Hour), 300*time.Hour, otherRoot).issuer
	underShort := selfSigned(t, now.Add(-time.Hour), 89*time.Hour, shortRootCA).issuer
	// An issuing CA made a minute ago (its name says so; Vault back-dated notBefore by 30s).
	justMade := named(selfSigned(t, now.Add(-90*time.Second), 300*time.Hour, rootCA).issuer, fmt.Sprintf("issuing-%d", now.Add(-time.Minute).Unix()))
	justMadeInWindow := named(selfSigned(t, now.Add(-90*time.Second), 90*time.Hour, rootCA).issuer, fmt.Sprintf("issuing-%d", now.Add(-time.Minute).Unix()))

	tests := map[string]struct {
		current   *issuer
		root      *issuer // nil: root
		tag       string
		want      IssuingVerdict // Why is only checked for being set
		wantStuck bool
	}{
		"no issuing CA yet is made at once":            {current: nil, want: IssuingVerdict{Rotate: true}},
		"a fresh issuing CA from this root stays":      {current: fresh},
		"an issuing CA in its replacement window goes": {current: old, want: IssuingVerdict{Rotate: true}},
		"an issuing CA from another root goes at once": {current: foreign, want: IssuingVerdict{Rotate: true}},
		"a new rotation request replaces it":           {current: named(fresh, "issuing-1"), tag: "abcd", want: IssuingVerdict{Rotate: true}},
		"a rotation request already answered does not": {current: named(fresh, "issuing-1-abcd"), tag: "abcd"},
		"a first request a minute after the issuing CA was made is answered at once": {
			current: justMade, tag: "abcd", want: IssuingVerdict{Rotate: true},
		},
		"a repeated request a minute after the last answered one waits for the floor": {
			current: named(justMade, justMade.Name+"-0123"), tag: "abcd", want: IssuingVerdict{HeldUntil: now.Add(-time.Minute).Add(RotationFloor)},
		},
		"a repeated request after the floor is answered": {
			current: named(fresh, fmt.Sprintf("issuing-%d-0123", now.Add(-RotationFloor).Unix())), tag: "abcd", want: IssuingVerdict{Rotate: true},
		},
		"a replacement window reached a minute after the last rotation waits for the floor": {
			current: justMadeInWindow, want: IssuingVerdict{HeldUntil: now.Add(-time.Minute).Add(RotationFloor)},
		},
		"an issuing CA that cannot leave its window under a short root is kept": {
			current: underShort, root: shortRoot, want: IssuingVerdict{Stuck: true},
		},
		"a person may still ask to rotate under a short root": {
			current: named(underShort, "issuing-1"), root: shortRoot, tag: "abcd", want: IssuingVerdict{Rotate: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := tc.root
			if r == nil {
				r = root
			}
			got := IssuingDecision(tc.current, r, 100*time.Hour, tc.tag, now)
			due := tc.want.Rotate || tc.want.Stuck || !tc.want.HeldUntil.IsZero()
			assert.Equal(t, due, got.Why != "", "why: %q", got.Why)
			got.Why = ""
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLastRotation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := selfSigned(t, now.Add(-time.Hour), 1000*time.Hour, nil)
	iss := selfSigned(t, now.Add(-30*time.Second), 100*time.Hour, root).issuer
	tests := map[string]struct {
		name string
		want time.Time
	}{
		"the time in the name":                    {name: fmt.Sprintf("issuing-%d", now.Unix()), want: now},
		"the time in a name with a request tag":   {name: fmt.Sprintf("issuing-%d-abcd", now.Unix()), want: now},
		"notBefore when the name has no time":     {name: "imported", want: now.Add(-30 * time.Second)},
		"notBefore when the name's time is older": {name: "issuing-5", want: now.Add(-30 * time.Second)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.True(t, tc.want.Equal(lastRotation(named(iss, tc.name))), "got %s", lastRotation(named(iss, tc.name)))
		})
	}
}

func TestLaterIssuerName(t *testing.T) {
	for name, want := range map[string]string{
		"issuing-100":      "issuing-101",
		"issuing-100-abcd": "issuing-101-abcd",
	} {
		assert.Equal(t, want, laterIssuerName(name), name)
	}
}

func TestRootExpiringCondition(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan := &Plan{RotateBefore: 100 * time.Hour, ExpiryWarning: 720 * time.Hour}
	tests := map[string]struct {
		rootLeft   time.Duration
		plan       *Plan // nil: plan
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		"a long-lived root is valid":                   {rootLeft: 10000 * time.Hour, wantStatus: metav1.ConditionFalse, wantReason: "RootValid"},
		"a root within its expiry warning is expiring": {rootLeft: 700 * time.Hour, wantStatus: metav1.ConditionTrue, wantReason: ReasonRootExpiring},
		"a root shorter than rotateBefore needs attention, before any expiry warning": {
			rootLeft: 90 * time.Hour, plan: &Plan{RotateBefore: 100 * time.Hour, ExpiryWarning: time.Hour},
			wantStatus: metav1.ConditionTrue, wantReason: ReasonRootTooShort,
		},
		"a root too short for rotation wins over the expiry warning": {
			rootLeft: 100*time.Hour + 30*time.Second, wantStatus: metav1.ConditionTrue, wantReason: ReasonRootTooShort,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := tc.plan
			if p == nil {
				p = plan
			}
			got := rootExpiringCondition(now.Add(tc.rootLeft), p, now)
			assert.Equal(t, tc.wantStatus, got.Status)
			assert.Equal(t, tc.wantReason, got.Reason)
			assert.NotEmpty(t, got.Message)
		})
	}
}
