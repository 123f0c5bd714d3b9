package plugintest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/clusterpki/clusterpki/apis/generated/clientset/versioned"
	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// The monitoring component is tested here because this suite runs both operators as the
// programs a cluster runs, each serving its own /metrics.

// ruleGroups reads deploy/monitoring/prometheusrule.yaml and returns its spec, which is a
// Prometheus rule file.
func ruleGroups(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "prometheusrule.yaml"))
	require.NoError(t, err)
	var rule struct {
		Kind string
		Spec map[string]any
	}
	require.NoError(t, yaml.Unmarshal(data, &rule))
	require.Equal(t, "PrometheusRule", rule.Kind)
	return rule.Spec
}

// metricNames returns the clusterpki_ series names that text (PromQL) uses.
func metricNames(text string) []string {
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bclusterpki_[a-z0-9_]+`).FindAllString(text, -1) {
		set[m] = true
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// scrape returns the series names the operators' /metrics expose now.
func scrape(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, addr := range metricsAddrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		for _, line := range strings.Split(string(body), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if i := strings.IndexAny(line, "{ "); i > 0 {
				names[line[:i]] = true
			}
		}
	}
	return names
}

// TestMonitoringUsesExportedMetrics checks every clusterpki_ series that the alerting rules and
// the Grafana dashboard use against the live /metrics of both operators, once they have
// provisioned a CA and issued a certificate: a renamed metric fails here.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client, err := versioned.NewForConfig(env.RESTConfig)
	require.NoError(t, err)
	const ns = "monitoring"
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", env.Kubeconfig, "apply", "-n", ns,
		"-f", filepath.Join(root, "deploy", "examples", "00-certificateauthority.yaml"),
		"-f", filepath.Join(root, "deploy", "examples", "30-admin.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	require.Eventually(t, func() bool {
		c, err := client.ClusterpkiV1alpha1().Certificates(ns).Get(ctx, "admin", metav1.GetOptions{})
		return err == nil && isReady(c.Status.Conditions)
	}, 2*time.Minute, 500*time.Millisecond, "the admin certificate was not issued")

	rules, err := json.Marshal(ruleGroups(t))
	require.NoError(t, err)
	dashboard, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "grafana-dashboard.json"))
	require.NoError(t, err)
	used := metricNames(string(rules) + string(dashboard))
	require.GreaterOrEqual(t, len(used), 12, "the rules and dashboard use the operators' series: %v", used)

	var missing []string
	assert.Eventually(t, func() bool {
		exported := scrape(t)
		missing = missing[:0]
		for _, n := range used {
			if !exported[n] {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, time.Second)
	assert.Empty(t, missing, "series used by deploy/monitoring that the operators do not export")
}

// TestAlertRules runs promtool (built from the Prometheus module pinned in scripts/versions.env)
// on the rules: check rules, then the unit tests in testdata/rules_test.yaml. A copy of the rules
// with one series renamed must fail those tests, so they do look at the names.
func TestAlertRules(t *testing.T) {
	promtool, err := testenv.Binary("promtool")
	require.NoError(t, err)
	testFile, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	require.NoError(t, err)
	rules, err := yaml.Marshal(ruleGroups(t))
	require.NoError(t, err)

	run := func(rules []byte, args ...string) (string, error) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "rules_test.yaml"), testFile, 0o644))
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(rules, "check", "rules", "rules.yaml")
	require.NoError(t, err, out)
	out, err = run(rules, "test", "rules", "rules_test.yaml")
	require.NoError(t, err, out)
	t.Log(out)

	renamed := strings.ReplaceAll(string(rules), "clusterpki_certificate_ready", "clusterpki_certificate_is_ready")
	require.NotEqual(t, string(rules), renamed)
	out, err = run([]byte(renamed), "test", "rules", "rules_test.yaml")
	assert.Error(t, err, "promtool test rules passed with a renamed series:\n%s", out)
	assert.Contains(t, out, "ClusterPKICertificateNotReady")
}

// The alert names in the PrometheusRule all have a test in rules_test.yaml.
func TestEveryAlertIsTested(t *testing.T) {
	spec := ruleGroups(t)
	testFile, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	require.NoError(t, err)
	data, err := json.Marshal(spec)
	require.NoError(t, err)
	var groups struct {
		Groups []struct {
			Rules []struct{ Alert string }
		}
	}
	require.NoError(t, json.Unmarshal(data, &groups))
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			assert.Contains(t, string(testFile), "alertname: "+r.Alert, "no promtool test for %s", r.Alert)
		}
	}
	assert.GreaterOrEqual(t, n, 12)
}
