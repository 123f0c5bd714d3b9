package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	tests := map[string]struct {
		format, level string
		wantLevel     logrus.Level
		wantErr       string // empty: no error
	}{
		"text at info is the default":  {format: "", level: "", wantLevel: logrus.InfoLevel},
		"json at debug":                {format: "json", level: "debug", wantLevel: logrus.DebugLevel},
		"warn is accepted for warning": {format: "text", level: "warn", wantLevel: logrus.WarnLevel},
		"an unknown format is refused": {format: "yaml", level: "info", wantErr: `log format "yaml" is not one of text, json`},
		"an unknown level is refused":  {format: "text", level: "loud", wantErr: `log level "loud" is not one of trace, debug, info, warning, error`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			log, err := New(tc.format, tc.level, &bytes.Buffer{})
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantLevel, log.GetLevel())
		})
	}
}

func TestLogrMapsVerbosity(t *testing.T) {
	var out bytes.Buffer
	log, err := New("json", "debug", &out)
	require.NoError(t, err)
	l := NewLogr(log).WithName("leaderelection").WithValues("lease", "ns/name")

	l.Info("verbosity zero")            // Debug: written
	l.V(4).Info("verbosity four")       // Trace: dropped at debug
	l.Error(errors.New("boom"), "fail") // Error: written

	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)

	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	assert.Equal(t, "debug", first["level"])
	assert.Equal(t, "leaderelection: verbosity zero", first["msg"])
	assert.Equal(t, "ns/name", first["lease"])
	assert.Equal(t, "error", second["level"])
	assert.Equal(t, "boom", second["error"])
}
