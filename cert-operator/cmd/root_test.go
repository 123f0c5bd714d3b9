package cmd

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --rotation-reissue-interval is set like every other flag, on the command line or through its
// environment variable, and a negative interval is refused before anything starts.
func TestRotationReissueIntervalFlag(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  string
	}{
		"on the command line":                        {args: []string{"--rotation-reissue-interval=-1s"}},
		"from the environment":                       {env: "-1s"},
		"the command line wins over the environment": {args: []string{"--rotation-reissue-interval=-1s"}, env: "1s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("CLUSTERPKI_ROTATION_REISSUE_INTERVAL", tc.env)
			}
			cmd := NewCommand()
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			t.Setenv("VAULT_TOKEN", "unused")
			cmd.SetArgs(append([]string{"--vault-addr=http://127.0.0.1:1", "--vault-auth=token"}, tc.args...))
			err := cmd.Execute()
			require.Error(t, err)
			assert.Equal(t, "--rotation-reissue-interval must not be negative, got -1s", err.Error())
		})
	}
	f := NewCommand().Flags().Lookup("rotation-reissue-interval")
	require.NotNil(t, f)
	assert.Equal(t, "200ms", f.DefValue)
	assert.Contains(t, f.Usage, "CLUSTERPKI_ROTATION_REISSUE_INTERVAL")
}
