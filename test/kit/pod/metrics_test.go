package pod

import (
	"bufio"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSumSamples(t *testing.T) {
	const text = `# HELP clusterpki_rotation_reissues_total Re-issues.
# TYPE clusterpki_rotation_reissues_total counter
clusterpki_rotation_reissues_total 7
clusterpki_rotation_reissues_total_other 100
clusterpki_leader_is_leader{lease="ca-operator"} 1
clusterpki_leader_is_leader{lease="other"} 0
`
	tests := map[string]struct {
		name      string
		want      float64
		wantFound bool
	}{
		"a family without labels":                  {name: "clusterpki_rotation_reissues_total", want: 7, wantFound: true},
		"labels are summed over":                   {name: "clusterpki_leader_is_leader", want: 1, wantFound: true},
		"a family nothing serves is absent, not 0": {name: "clusterpki_missing", want: 0, wantFound: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, found, err := sumSamples(bufio.NewScanner(strings.NewReader(text)), tc.name)
			require.NoError(t, err)
			require.Equal(t, tc.wantFound, found)
			require.Equal(t, tc.want, got)
		})
	}
}
