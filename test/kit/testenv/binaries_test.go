package testenv_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

// syncBuffer is a bytes.Buffer safe for the progress ticker and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// standIn points the tool cache at an empty folder and the build step at a script that runs
// body (with $1 the tool and $OUT the binary to make); it returns the tools' file names.
func standIn(t *testing.T, body string) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, tool := range testenv.Tools {
		path, err := testenv.Binary(tool) // the real one, for its versioned name
		require.NoError(t, err)
		names[tool] = filepath.Base(path)
	}
	dir := t.TempDir()
	var cases strings.Builder
	for tool, name := range names {
		fmt.Fprintf(&cases, "  %s) OUT=%q ;;\n", tool, filepath.Join(dir, "bin", name))
	}
	script := filepath.Join(dir, "build.sh")
	require.NoError(t, os.WriteFile(script, []byte("set -eu\ncase \"$1\" in\n"+cases.String()+"esac\n"+body), 0o755))
	t.Setenv("CLUSTERPKI_BIN", filepath.Join(dir, "bin"))
	t.Setenv(testenv.BuildToolsEnv, script)
	old := testenv.ProgressInterval
	testenv.ProgressInterval = 200 * time.Millisecond
	t.Cleanup(func() { testenv.ProgressInterval = old })
	return names
}

func TestEnsureBinariesReportsProgressAndCaches(t *testing.T) {
	names := standIn(t, "echo \"building $1\"\nsleep 1\nprintf '#!/bin/sh\\n' > \"$OUT\"\nchmod +x \"$OUT\"\n")
	var out syncBuffer
	require.NoError(t, testenv.EnsureBinaries(context.Background(), &out))
	got := out.String()
	for _, tool := range testenv.Tools {
		name := names[tool]
		assert.Contains(t, got, "building "+name+" from source: ")
		assert.Contains(t, got, "once — later runs use ")
		assert.GreaterOrEqual(t, strings.Count(got, "building "+name+": "), 3, "progress lines for %s every 200ms of a 1s build:\n%s", name, got)
		assert.Contains(t, got, "built "+name+" in ")
	}
	assert.Contains(t, got, "(once; cached afterwards)")

	var again syncBuffer
	require.NoError(t, testenv.EnsureBinaries(context.Background(), &again))
	assert.Empty(t, again.String(), "a second run builds nothing and says nothing")
	missing, err := testenv.MissingBinaries()
	require.NoError(t, err)
	assert.Empty(t, missing)
}

func TestEnsureBinariesFailureCarriesTheLog(t *testing.T) {
	standIn(t, "echo \"go: module not found (stand-in for $1)\" >&2\nexit 1\n")
	err := testenv.EnsureBinaries(context.Background(), &syncBuffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go: module not found (stand-in for etcd)")
}

func TestEnsureBinariesStopsWhenCancelled(t *testing.T) {
	standIn(t, "sleep 60\n")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := testenv.EnsureBinaries(ctx, &syncBuffer{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "the build was not stopped")
}

func TestBinDirFollowsTheScriptsRules(t *testing.T) {
	tests := map[string]struct {
		bin, cache, xdg string
		want            string
	}{
		"CLUSTERPKI_BIN first":      {bin: "/b", cache: "/c", xdg: "/x", want: "/b"},
		"then CLUSTERPKI_CACHE/bin": {cache: "/c", xdg: "/x", want: "/c/bin"},
		"then XDG_CACHE_HOME":       {xdg: "/x", want: "/x/clusterpki/bin"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CLUSTERPKI_BIN", tc.bin)
			t.Setenv("CLUSTERPKI_CACHE", tc.cache)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			got, err := testenv.BinDir()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("BinDir() = %q, want %q", got, tc.want)
			}
		})
	}
}
