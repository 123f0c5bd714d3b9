// Package proc starts and stops the programs the tests, the demo and the bench run as child
// processes (etcd, kube-apiserver, Vault, the operators): output appended to a log file, each
// in its own process group, killed when the parent dies where the system allows it, and
// stopped with SIGTERM, then SIGKILL.
package proc

import (
	"bytes"
	"context"
	"errors"
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

// StopTimeout is how long a process gets to exit after SIGTERM before SIGKILL.
const StopTimeout = 15 * time.Second

// Spec is a program to start.
type Spec struct {
	// Name names the process in errors.
	Name string
	// Path is the binary and Args its arguments.
	Path string
	Args []string
	// Env is the process's environment (nil: this process's).
	Env []string
	// Dir is the working directory (empty: this process's).
	Dir string
	// LogPath is the file stdout and stderr are appended to.
	LogPath string
}

// Process is one running (or ended) child program.
type Process struct {
	// Name and LogPath are the Spec's.
	Name, LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // exit status, valid after done
}

// Start starts s. The child gets its own process group (a terminal's Ctrl-C reaches only the
// parent, which stops its children in order) and, on Linux, SIGKILL when the parent dies.
func Start(s Spec) (*Process, error) {
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339), s.Path, strings.Join(s.Args, " "))
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env, cmd.Dir = s.Env, s.Dir
	cmd.SysProcAttr = sysProcAttr()
	if err := Spawn(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Process{Name: s.Name, LogPath: s.LogPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how (an error even for exit status 0: a
// program of ours that ends by itself has failed).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// ExitError returns an error saying that the process has exited, how, and its log's last lines.
func (p *Process) ExitError() error {
	_, err := p.Exited()
	return fmt.Errorf("%s exited (%v); log %s:\n%s", p.Name, err, p.LogPath, Tail(p.LogPath, 20))
}

// Stop sends SIGTERM, then SIGKILL after StopTimeout, and waits for the exit. It does nothing
// on a nil or ended process.
func (p *Process) Stop() {
	if p == nil {
		return
	}
	if done, _ := p.Exited(); done {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.Kill()
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Process) Kill() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// WaitReady polls url (a health endpoint of the process) until it answers 200, failing with
// the log's tail as soon as the process exits, or after limit.
func (p *Process) WaitReady(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		if done, _ := p.Exited(); done {
			return p.ExitError()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v (%s: %s); log %s:\n%s", p.Name, limit, url, last, p.LogPath, Tail(p.LogPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// EnvWithout returns this process's environment minus the variables with any of the prefixes.
func EnvWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// FreeAddr returns a free loopback address (host:port).
func FreeAddr() (string, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), nil
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WriteFile replaces path with data (mode 0600) in one rename, making its folder: a reader (a
// process reloading its certificates) sees the old or the new file, never a part.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
