package pkipath

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFor(t *testing.T) {
	tests := map[string]struct {
		prefix, namespace, clusterID string
		want                         Mounts
		wantErr                      string // empty: no error
	}{
		"default layout": {prefix: "clusterpki", namespace: "tenant-a", clusterID: "prod",
			want: Mounts{Root: "clusterpki/tenant-a/prod/root", Issuing: "clusterpki/tenant-a/prod/issuing"}},
		"prefix of several segments": {prefix: "teams/pki", namespace: "a", clusterID: "b",
			want: Mounts{Root: "teams/pki/a/b/root", Issuing: "teams/pki/a/b/issuing"}},
		"clusterID that climbs out":   {prefix: "clusterpki", namespace: "a", clusterID: "../../sys", wantErr: "clusterID"},
		"clusterID with a slash":      {prefix: "clusterpki", namespace: "a", clusterID: "b/issuing", wantErr: "clusterID"},
		"empty clusterID":             {prefix: "clusterpki", namespace: "a", clusterID: "", wantErr: "clusterID"},
		"namespace that is not label": {prefix: "clusterpki", namespace: "A.b", clusterID: "c", wantErr: "namespace"},
		"empty prefix":                {prefix: "", namespace: "a", clusterID: "b", wantErr: "empty"},
		"prefix with trailing slash":  {prefix: "clusterpki/", namespace: "a", clusterID: "b", wantErr: "segment"},
		"prefix in sys/":              {prefix: "sys/mounts", namespace: "a", clusterID: "b", wantErr: "reserved"},
		"prefix in auth/":             {prefix: "auth", namespace: "a", clusterID: "b", wantErr: "reserved"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := For(tc.prefix, tc.namespace, tc.clusterID)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPaths(t *testing.T) {
	m, err := For("clusterpki", "ns", "c1")
	require.NoError(t, err)
	assert.Equal(t, "clusterpki/ns/c1/issuing/sign/admin", m.SignPath("admin"))
	assert.Equal(t, "clusterpki/ns/c1/issuing/revoke", m.RevokePath())
}

func TestWithin(t *testing.T) {
	tests := map[string]struct {
		path string
		want bool
	}{
		"sign path below the prefix":  {"clusterpki/a/b/issuing/sign/r", true},
		"another mount":               {"pki-corp/sign/web", false},
		"a name that only starts so":  {"clusterpki-x/a/b/issuing/sign/r", false},
		"the prefix itself":           {"clusterpki", false},
		"climbing out with dot-dot":   {"clusterpki/../sys/revoke", false},
		"empty segment":               {"clusterpki//sys", false},
		"sys path":                    {"sys/revoke", false},
		"dot segment inside the path": {"clusterpki/a/./b", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, Within("clusterpki", tc.path))
		})
	}
}
