package pod

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric returns the sum of every sample of the metric family name (its labels summed over)
// that the pod's /metrics serves now, and whether the family has any sample.
func (p *Pod) Metric(ctx context.Context, name string) (float64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics of %s: %s", p.Name, resp.Status)
	}
	return sumSamples(bufio.NewScanner(resp.Body), name)
}

// sumSamples adds up the samples of family name in the Prometheus text format that s reads.
func sumSamples(s *bufio.Scanner, name string) (float64, bool, error) {
	var sum float64
	found := false
	for s.Scan() {
		line := s.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (!strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{")) {
			continue // a comment, another family, or one whose name merely starts the same
		}
		if i := strings.LastIndex(rest, "}"); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("metric line without a value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, s.Err()
}

// WaitLeading waits until the pod's process leads (the operators' clusterpki_leader_is_leader
// is 1) and answers 200 on /readyz, failing early if it exits: a replica that stands by does
// no work, so a test that needs the work done waits for this, not only for readiness.
func (p *Pod) WaitLeading(ctx context.Context, limit time.Duration) error {
	if err := p.WaitReady(ctx, limit); err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		if done, _ := p.Process().Exited(); done {
			return p.Process().ExitError()
		}
		v, _, err := p.Metric(ctx, "clusterpki_leader_is_leader")
		if err == nil && v == 1 {
			return p.WaitReady(ctx, limit)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not lead after %v (last: %v, err %v)", p.Name, limit, v, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
