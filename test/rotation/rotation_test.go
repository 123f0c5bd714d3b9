package rotation

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRotation creates every test's objects first, then starts both operators: a Certificate
// is re-issued at most once a minute after it was last issued (status.lastIssuanceTime), so
// the sooner the Certificates are issued, the sooner their rotations can move them. The trust
// matrix, the kills and the tenant boundary then run at the same time; the rate bound runs last,
// when nothing else re-issues, with a cert-operator of its own.
func TestRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	matrix := prepareTrustMatrix(ctx, t)
	kills := prepareKillTest(ctx, t)
	boundary := prepareTenantBoundary(ctx, t)
	rate := prepareRateTest(ctx, t)
	ops := startOperators(ctx, t)
	t.Logf("objects created and operators leading after %v", time.Since(start).Round(time.Second))

	t.Run("Rotations", func(t *testing.T) {
		// Concurrent, not t.Parallel: -parallel defaults to the number of CPUs, and on a
		// two-core machine the third test would wait for a rotation of the others to complete.
		var wg sync.WaitGroup
		wg.Go(func() { t.Run("TrustMatrix", func(t *testing.T) { matrix.run(ctx, t) }) })
		wg.Go(func() { t.Run("KilledInEveryPhase", func(t *testing.T) { kills.run(ctx, t, ops) }) })
		wg.Go(func() { t.Run("TenantBoundary", func(t *testing.T) { boundary.run(ctx, t) }) })
		wg.Wait()
	})
	t.Logf("parallel rotations done after %v", time.Since(start).Round(time.Second))
	t.Run("ReissueRateBound", func(t *testing.T) { rate.run(ctx, t, ops) })
	t.Logf("done after %v", time.Since(start).Round(time.Second))
}
