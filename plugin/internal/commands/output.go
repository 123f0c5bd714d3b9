package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// printStructured writes v as JSON or YAML when --output asks for it, and reports whether it did.
func (o *options) printStructured(v any) (bool, error) {
	switch o.output {
	case "json":
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = o.out.Write(data)
		return true, err
	}
	return false, nil
}

// table writes rows under header, columns aligned as kubectl aligns them.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// until says how far t lies from now, kubectl style: "in 89d", "expired 3h ago".
func until(now time.Time, t time.Time) string {
	d := t.Sub(now)
	if d < 0 {
		return "expired " + shortDuration(-d) + " ago"
	}
	return "in " + shortDuration(d)
}

// ago says how long before now t was: "5m".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(t))
}

// shortDuration is the largest unit of d that is at least one: 3d, 5h, 12m, 40s.
func shortDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
}

// expiry prints an optional time as "2036-11-26 (in 3649d)", or "-".
func expiry(now time.Time, t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02") + " (" + until(now, t.Time) + ")"
}

// findCondition returns the condition of type t, nil when absent.
func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// conditionSummary is "True", "False (Reason)" or "Unknown" for a condition that may be absent.
func conditionSummary(c *metav1.Condition) string {
	if c == nil {
		return "Unknown"
	}
	if c.Status == metav1.ConditionTrue || c.Reason == "" {
		return string(c.Status)
	}
	return string(c.Status) + " (" + c.Reason + ")"
}
