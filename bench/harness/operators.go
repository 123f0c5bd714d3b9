package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// operatorProc is one operator process.
type operatorProc struct {
	name, bin, logPath, metricsAddr string
	args, env                       []string
	cmd                             *exec.Cmd
	done                            chan struct{}
	http                            *http.Client
}

// newOperator prepares operator name (not started) with the shipped Deployment's arguments and
// the bench's flags: of those, only the ones its --help lists, so the harness works with either
// generation of the command line.
func newOperator(ctx context.Context, name, bin, logDir string, env []string, shippedArgs []string, flags map[string]string) (*operatorProc, error) {
	help, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if len(help) == 0 {
		return nil, fmt.Errorf("%s --help printed nothing (is %s built?)", name, bin)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	flags["metrics-addr"] = addr
	o := &operatorProc{name: name, bin: bin, logPath: filepath.Join(logDir, name+".log"), metricsAddr: addr, env: env,
		http: &http.Client{Timeout: 30 * time.Second}, args: append([]string(nil), shippedArgs...)}
	for k, v := range flags {
		if hasFlag(string(help), k) {
			o.args = append(o.args, "--"+k+"="+v)
		}
	}
	return o, nil
}

// hasFlag reports whether a --help text lists --flag.
func hasFlag(help, flag string) bool {
	for _, after := range []string{" ", "=", "["} {
		if strings.Contains(help, "--"+flag+after) {
			return true
		}
	}
	return false
}

// start runs the operator, its output appended to its log, and waits for /readyz.
func (o *operatorProc) start(ctx context.Context) error {
	f, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format(time.RFC3339), o.bin, strings.Join(o.args, " "))
	cmd := exec.Command(o.bin, o.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = o.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", o.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	o.cmd, o.done = cmd, done
	return o.waitReady(ctx, 2*time.Minute)
}

func (o *operatorProc) exited() bool {
	if o.done == nil {
		return true
	}
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

func (o *operatorProc) pid() int { return o.cmd.Process.Pid }

// waitReady polls /readyz until 200.
func (o *operatorProc) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if o.exited() {
			return fmt.Errorf("%s exited; log %s", o.name, o.logPath)
		}
		ready, _ := o.ready(ctx)
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v; log %s", o.name, limit, o.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready reports whether /readyz answers 200.
func (o *operatorProc) ready(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.metricsAddr+"/readyz", nil)
	if err != nil {
		return false, err
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// metrics scrapes the operator's /metrics.
func (o *operatorProc) metrics(ctx context.Context) (snapshot, error) {
	return scrape(ctx, o.http, "http://"+o.metricsAddr+"/metrics")
}

// kill sends SIGKILL and waits.
func (o *operatorProc) kill() {
	if o.exited() {
		return
	}
	_ = o.cmd.Process.Kill()
	<-o.done
}

// stop sends SIGTERM, then SIGKILL after 15 s.
func (o *operatorProc) stop() {
	if o.exited() {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(15 * time.Second):
		o.kill()
	}
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
