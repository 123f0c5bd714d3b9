package certificate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/cert-operator/internal/renewal"
	"github.com/clusterpki/clusterpki/pkg/controller"
)

// issuedFixture issues web once, then returns a fresh controller (a restart: nothing in
// memory) over the state the first left, with change applied to the Certificate, whether the
// Secret is kept, and the clock at after past the issuance.
func issuedFixture(t *testing.T, keepSecret bool, change func(*v1alpha1.Certificate), after time.Duration) (*fixture, *v1alpha1.Certificate) {
	t.Helper()
	v := newFakeVault(t)
	first := newFixture(t, v, readyCA(v), certificate())
	require.NoError(t, first.sync(t))
	cert, err := first.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, cert.Status.LastIssuanceTime, "the issuance is recorded in status")
	if change != nil {
		change(cert)
	}
	objs := []runtime.Object{readyCA(v), cert}
	if keepSecret {
		s, err := first.kube.CoreV1().Secrets("team-a").Get(context.Background(), "web-tls", metav1.GetOptions{})
		require.NoError(t, err)
		objs = append(objs, s)
	}
	v.calls = nil
	f := newFixture(t, v, objs...)
	issuedAt := cert.Status.LastIssuanceTime.Time
	f.c.now = func() time.Time { return issuedAt.Add(after) }
	return f, cert
}

func TestSyncHoldsAReissueWithinTheFloor(t *testing.T) {
	tests := map[string]struct {
		keepSecret bool
		change     func(*v1alpha1.Certificate)
		after      time.Duration
		wantSign   bool
		// wantEvent is the held sync's event prefix; empty when it signs.
		wantEvent string
	}{
		"a deleted Secret within the floor waits, not Ready, with a Warning": {
			after: 10 * time.Second, wantEvent: "Warning ReissueDeferred DoesNotExist: ",
		},
		"a deleted Secret after the floor is issued again": {
			after: renewal.ReissueFloor, wantSign: true,
		},
		"a changed spec within the floor is issued at once": {
			keepSecret: true, after: 10 * time.Second, wantSign: true,
			change: func(c *v1alpha1.Certificate) {
				c.Spec.AltNames = append(c.Spec.AltNames, "api.example.com")
				c.Generation++
			},
		},
		"a renew request within the floor is issued at once": {
			keepSecret: true, after: 10 * time.Second, wantSign: true,
			change: func(c *v1alpha1.Certificate) { c.Annotations = map[string]string{v1alpha1.AnnotationRenew: "now"} },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, cert := issuedFixture(t, tc.keepSecret, tc.change, tc.after)
			err := f.sync(t)
			if tc.wantSign {
				require.NoError(t, err)
				assert.Len(t, f.vault.calls, 1, "signed")
				return
			}
			require.NoError(t, err)
			assert.Empty(t, f.vault.calls, "nothing signed within the floor")
			ready := f.readyCondition(t)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, ReasonReissueDeferred, ready.Reason)
			events := f.events()
			require.Len(t, events, 1)
			assert.Contains(t, events[0], tc.wantEvent)
			held, err := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
			require.NoError(t, err)
			assert.True(t, held.Status.RenewalTime.Equal(&metav1.Time{Time: cert.Status.LastIssuanceTime.Add(renewal.ReissueFloor)}),
				"renewalTime is the floor's end: %s", held.Status.RenewalTime)

			// The held state is stable: syncing again writes nothing and says nothing more.
			f2 := newFixture(t, f.vault, readyCA(f.vault), held)
			f2.c.now = f.c.now
			require.NoError(t, f2.sync(t))
			assert.Empty(t, f2.events())
			assert.Empty(t, f.vault.calls)
		})
	}
}

func TestFinalizeWithin(t *testing.T) {
	deleting := func(ago time.Duration, annotations map[string]string) func(*v1alpha1.Certificate) {
		return func(c *v1alpha1.Certificate) {
			c.Spec.RevocationPolicy = v1alpha1.RevocationPolicyOnDelete
			c.Finalizers = []string{Finalizer}
			t := metav1.NewTime(c.Status.LastIssuanceTime.Add(ago))
			c.DeletionTimestamp = &t
			c.Annotations = annotations
		}
	}
	tests := map[string]struct {
		change       func(*v1alpha1.Certificate)
		after        time.Duration // clock after the issuance
		vaultDown    bool
		wantReleased bool
		wantEvent    string // prefix; empty: none
		wantVault    bool   // a revoke was sent
	}{
		"Vault down within the timeout: retried, the finalizer kept": {
			change: deleting(0, nil), after: time.Minute, vaultDown: true, wantVault: true,
		},
		"Vault down past the timeout: let go, naming the serial": {
			change: deleting(0, nil), after: 6 * time.Minute, vaultDown: true, wantReleased: true,
			wantEvent: "Warning RevocationAbandoned Certificate ",
		},
		"the skip annotation: let go at once without asking Vault": {
			change: deleting(0, map[string]string{v1alpha1.AnnotationSkipRevocation: "true"}), after: time.Second, vaultDown: true,
			wantReleased: true, wantEvent: "Warning RevocationSkipped Certificate ",
		},
		"Vault up: revoked and let go": {
			change: deleting(0, nil), after: time.Minute, wantReleased: true, wantVault: true,
			wantEvent: "Normal Revoked Revoked certificate ",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, _ := issuedFixture(t, true, tc.change, tc.after)
			if tc.vaultDown {
				f.vault.refuse = errors.New("dial tcp 127.0.0.1:8200: connect: connection refused")
			}
			err := f.sync(t)
			cert, getErr := f.client.ClusterpkiV1alpha1().Certificates("team-a").Get(context.Background(), "web", metav1.GetOptions{})
			require.NoError(t, getErr)
			if tc.wantReleased {
				require.NoError(t, err)
				assert.NotContains(t, cert.Finalizers, Finalizer)
			} else {
				require.Error(t, err)
				var requeue *controller.RequeueAfterError
				assert.False(t, errors.As(err, &requeue), "a failure, retried with backoff")
				assert.Contains(t, cert.Finalizers, Finalizer)
			}
			assert.Equal(t, tc.wantVault, len(f.vault.calls) > 0, "Vault calls: %v", f.vault.calls)
			events := f.events()
			if tc.wantEvent == "" {
				assert.Empty(t, events)
				return
			}
			require.Len(t, events, 1)
			assert.Contains(t, events[0], tc.wantEvent)
			assert.Contains(t, events[0], cert.Status.SerialNumber, "the event names the serial")
		})
	}
}
