package testenv

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// startProcess starts bin with args and environment env, appending its output to logPath.
func startProcess(name, logPath string, env []string, bin string, args ...string) (*proc.Process, error) {
	return proc.Start(proc.Spec{Name: name, Path: bin, Args: args, Env: env, LogPath: logPath})
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string { return proc.Tail(path, n) }

// poll calls check every interval until it returns nil, the process exits,
// or limit passes; the error names the program and carries its log tail.
func poll(ctx context.Context, p *proc.Process, limit time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("testenv: %s exited (%v) before it was ready; log %s:\n%s", p.Name, err, p.LogPath, Tail(p.LogPath, 30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s not ready after %v: %w (last check: %v); log %s:\n%s",
				p.Name, limit, ctx.Err(), last, p.LogPath, Tail(p.LogPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
