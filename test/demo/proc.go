package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// procGroup is the programs the demo started itself (the control plane's are the kit's testenv's);
// their pids are also listed in pidFile for `make demo-down`.
type procGroup struct {
	pidFile string
	mu      sync.Mutex
	procs   []*proc.Process
}

func newProcGroup(pidFile string) *procGroup { return &procGroup{pidFile: pidFile} }

// start runs bin with args and environment env (nil: the demo's), output appended to logPath
// (see proc.Start: its own process group, SIGKILL if the demo dies).
func (g *procGroup) start(name, logPath string, env []string, bin string, args ...string) (*proc.Process, error) {
	p, err := proc.Start(proc.Spec{Name: name, Path: bin, Args: args, Env: env, LogPath: logPath})
	if err != nil {
		return nil, err
	}
	return p, g.add(p)
}

// add records p, which the demo started, to be checked and stopped with the group.
func (g *procGroup) add(p *proc.Process) error {
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return g.recordPID(p.Pid(), p.Name)
}

// stop stops p and forgets it, so that check does not report a program the demo stopped on
// purpose (a guest component being restarted). Its line stays in the pid file: stopLeftovers
// skips pids that no longer run the demo's programs.
func (g *procGroup) stop(p *proc.Process) {
	g.mu.Lock()
	g.procs = slices.DeleteFunc(g.procs, func(q *proc.Process) bool { return q == p })
	g.mu.Unlock()
	p.Stop()
}

// stopWithin is stop with a grace period shorter than proc.StopTimeout: SIGTERM, then SIGKILL
// after grace, as a pod's terminationGracePeriodSeconds would.
func (g *procGroup) stopWithin(p *proc.Process, grace time.Duration) {
	stopped := make(chan struct{})
	go func() {
		g.stop(p)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		p.Kill()
		<-stopped
	}
}

// recordPID appends "pid name" to the pid file.
func (g *procGroup) recordPID(pid int, name string) error {
	f, err := os.OpenFile(g.pidFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%d %s\n", pid, name)
	return err
}

// check returns an error naming the first program that has exited, with its log's tail.
func (g *procGroup) check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.procs {
		if done, _ := p.Exited(); done {
			return p.ExitError()
		}
	}
	return nil
}

// stopAll stops the programs, newest first.
func (g *procGroup) stopAll() {
	if g == nil {
		return
	}
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// recordChildren lists in the pid file the running children of this process not yet in it:
// the kit's testenv etcd, kube-apiserver and Vault.
func (g *procGroup) recordChildren() error {
	known := map[int]bool{}
	for _, e := range readPIDFile(g.pidFile) {
		known[e.pid] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil // not Linux: nothing to record; the children die with us (Pdeathsig) anyway
	}
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || known[pid] {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(me) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(string(stat[bytes.IndexByte(stat, '(')+1:i]), "("), ")")
		if err := g.recordPID(pid, name); err != nil {
			return err
		}
	}
	return nil
}

type pidEntry struct {
	pid  int
	name string
}

func readPIDFile(path string) []pidEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []pidEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pidStr, name, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if pid, err := strconv.Atoi(pidStr); err == nil && pid > 0 {
			out = append(out, pidEntry{pid, name})
		}
	}
	return out
}

// belongs reports whether process pid runs with the state directory dir on its command line,
// so a recycled pid is never signalled.
func belongs(pid int, dir string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// isDemo reports whether process pid is a demo: its state directory on its command line, or
// a program whose name says demo.
func isDemo(pid int, dir string) bool {
	if belongs(pid, dir) {
		return true
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return err == nil && strings.Contains(filepath.Base(exe), "demo")
}

// demoPID returns the pid in dir/demo.pid and whether that process still runs.
func demoPID(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "demo.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil && isDemo(pid, dir)
}

// stopLeftovers stops a demo left running from dir and anything it started: the demo first
// (it stops its children in order), then whatever in dir/pids still runs.
func stopLeftovers(dir string, out io.Writer) error {
	stopped := 0
	if pid, alive := demoPID(dir); alive && pid != os.Getpid() {
		fmt.Fprintf(out, "stopping the demo (pid %d) ...\n", pid)
		if err := terminate(pid, 2*proc.StopTimeout+10*time.Second); err != nil {
			return err
		}
		stopped++
	}
	for _, e := range readPIDFile(filepath.Join(dir, "pids")) {
		if syscall.Kill(e.pid, 0) != nil || !belongs(e.pid, dir) {
			continue
		}
		fmt.Fprintf(out, "stopping %s (pid %d) ...\n", e.name, e.pid)
		if err := terminate(e.pid, proc.StopTimeout); err != nil {
			return err
		}
		stopped++
	}
	_ = os.Remove(filepath.Join(dir, "pids"))
	_ = os.Remove(filepath.Join(dir, "demo.pid"))
	if stopped == 0 {
		fmt.Fprintf(out, "no demo running from %s\n", dir)
	} else {
		fmt.Fprintf(out, "stopped %d process(es)\n", stopped)
	}
	return nil
}

// terminate sends SIGTERM to pid, then SIGKILL after timeout, and waits until it is gone.
func terminate(pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	deadline := time.Now().Add(timeout)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(timeout)
		}
		if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				return nil // a zombie: gone, waiting for its parent
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}
