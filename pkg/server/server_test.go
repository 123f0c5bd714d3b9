package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	failing := map[string]func() error{
		"vault":  func() error { return errors.New("token expired") },
		"caches": func() error { return errors.New("not synced") },
		"fine":   func() error { return nil },
	}
	tests := map[string]struct {
		path       string
		checks     map[string]func() error
		wantStatus int
		wantBody   string // substring
	}{
		"healthz is ok even when checks fail":  {path: "/healthz", checks: failing, wantStatus: 200, wantBody: "ok"},
		"readyz is ok when every check passes": {path: "/readyz", checks: map[string]func() error{"fine": func() error { return nil }}, wantStatus: 200, wantBody: "ok"},
		"readyz names every failing check":     {path: "/readyz", checks: failing, wantStatus: 503, wantBody: "caches: not synced\nvault: token expired"},
		"metrics come from our registry":       {path: "/metrics", wantStatus: 200, wantBody: "go_goroutines"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler(tc.checks).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			assert.Equal(t, tc.wantStatus, rec.Code)
			assert.Contains(t, rec.Body.String(), tc.wantBody)
		})
	}
}

func TestServeListenerShutsDownOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	log := logrus.New()
	log.SetOutput(io.Discard)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, nil, log) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	assert.NoError(t, <-done)
}

func TestServeDisabled(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, Serve(ctx, "0", nil, log))
}
