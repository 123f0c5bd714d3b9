package ca

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// roleDiff lists the role parameters whose value in Vault differs from the plan.
// Vault answers lists as []any and numbers as json.Number, so both sides are
// normalised to strings before comparing.
func roleDiff(want map[string]any, have map[string]any) []string {
	var diff []string
	for k, w := range want {
		h, ok := have[k]
		if !ok || normalize(w) != normalize(h) {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// normalize renders a Vault parameter value in a canonical string form.
func normalize(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case []string:
		return normalizeList(t)
	case []any:
		s := make([]string, 0, len(t))
		for _, e := range t {
			s = append(s, fmt.Sprint(e))
		}
		return normalizeList(s)
	case json.Number:
		return t.String()
	case string:
		return t
	default:
		return fmt.Sprint(t)
	}
}

// normalizeList sorts a list and drops empty entries (Vault stores "" for an empty list).
func normalizeList(in []string) string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return "[" + strings.Join(out, ",") + "]"
}
