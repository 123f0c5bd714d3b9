package proc

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartStop(t *testing.T) {
	log := filepath.Join(t.TempDir(), "sleep.log")
	p, err := Start(Spec{Name: "sleep", Path: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}, LogPath: log})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(p.Log(), "started") }, 10*time.Second, 10*time.Millisecond)
	done, _ := p.Exited()
	assert.False(t, done)
	p.Stop()
	done, err = p.Exited()
	assert.True(t, done)
	assert.Error(t, err, "ended by SIGTERM")
	assert.Contains(t, p.Log(), "=== ", "the command line heads the log")
	assert.Contains(t, p.ExitError().Error(), "sleep exited")
}

func TestWaitReadyFailsWhenTheProcessExits(t *testing.T) {
	p, err := Start(Spec{Name: "false", Path: "/bin/sh", Args: []string{"-c", "echo broken; exit 3"},
		LogPath: filepath.Join(t.TempDir(), "false.log")})
	require.NoError(t, err)
	addr, err := FreeAddr()
	require.NoError(t, err)
	err = p.WaitReady(context.Background(), "http://"+addr+"/readyz", time.Minute)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken", "the log's tail explains")
}

func TestWaitReady(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	go srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	p, err := Start(Spec{Name: "sleep", Path: "/bin/sh", Args: []string{"-c", "exec sleep 60"},
		LogPath: filepath.Join(t.TempDir(), "sleep.log")})
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	require.NoError(t, p.WaitReady(context.Background(), "http://"+l.Addr().String()+"/readyz", 10*time.Second))
}

func TestEnvWithout(t *testing.T) {
	t.Setenv("CLUSTERPKI_PROC_TEST", "x")
	for _, kv := range EnvWithout("CLUSTERPKI_PROC_") {
		assert.False(t, strings.HasPrefix(kv, "CLUSTERPKI_PROC_"), kv)
	}
}
