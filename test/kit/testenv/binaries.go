package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

// RepoRoot returns the root of the clusterpki checkout: $CLUSTERPKI_REPO_ROOT
// if set, otherwise the nearest folder above the working directory that
// holds go.work.
func RepoRoot() (string, error) {
	if dir := os.Getenv("CLUSTERPKI_REPO_ROOT"); dir != "" {
		return dir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.work above the working directory; set CLUSTERPKI_REPO_ROOT")
		}
		dir = parent
	}
}

// BinDir returns the folder scripts/build-tools.sh builds into, by the same rules as
// scripts/lib.sh: $CLUSTERPKI_BIN, else $CLUSTERPKI_CACHE/bin, else
// $XDG_CACHE_HOME/clusterpki/bin, else ~/.cache/clusterpki/bin.
func BinDir() (string, error) {
	if dir := os.Getenv("CLUSTERPKI_BIN"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv("CLUSTERPKI_CACHE"); dir != "" {
		return filepath.Join(dir, "bin"), nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "clusterpki", "bin"), nil
}

// readVersions parses the KEY=VALUE lines of scripts/versions.env.
func readVersions(root string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(root, "scripts", "versions.env"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	versions := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			versions[k] = strings.Trim(v, `"'`)
		}
	}
	return versions, sc.Err()
}

// binaries holds the paths of the three programs the environment runs.
type binaries struct {
	etcd, apiserver, vault string
}

// Tools lists the programs the environment runs, in the order EnsureBinaries builds them.
var Tools = []string{"etcd", "kube-apiserver", "vault"}

// ProgressInterval is how often a tool build (or the wait for another process's build of the
// same tool) reports that it is still going.
var ProgressInterval = 10 * time.Second

// BuildToolsEnv names the environment variable that replaces scripts/build-tools.sh: the program
// it names is run with one tool name and must leave the binary where Binary looks for it. Tests
// use it to stand in for a long build without spending one.
const BuildToolsEnv = "CLUSTERPKI_BUILD_TOOLS"

// typicalBuild is how long a cold build of each tool took on a 2-core machine, said up front so
// a first run does not look stuck.
var typicalBuild = map[string]string{"etcd": "about 1 minute", "kube-apiserver": "about 9 minutes", "vault": "about 20 minutes", "promtool": "about 4 minutes"}

// findBinaries locates (building them if missing) etcd, kube-apiserver and
// Vault at the versions pinned in scripts/versions.env.
func findBinaries(ctx context.Context, progress io.Writer) (binaries, error) {
	var b binaries
	dst := map[string]*string{"etcd": &b.etcd, "kube-apiserver": &b.apiserver, "vault": &b.vault}
	for _, name := range Tools { // in order, so a first run builds the quickest first
		path, err := BinaryContext(ctx, name, progress)
		if err != nil {
			return binaries{}, err
		}
		*dst[name] = path
	}
	return b, nil
}

// EnsureBinaries builds, one after another, every tool of Tools that is not built yet, writing
// progress lines to progress (which tool, how long so far, that it happens once) at least every
// ProgressInterval. Cancelling ctx stops a build; callers give it no deadline, because a cold
// build takes as long as it takes and must not eat into any program's start-up time.
func EnsureBinaries(ctx context.Context, progress io.Writer) error {
	for _, name := range Tools {
		if _, err := BinaryContext(ctx, name, progress); err != nil {
			return err
		}
	}
	return nil
}

// MissingBinaries returns the tools of Tools whose pinned version is not built yet.
func MissingBinaries() ([]string, error) {
	var missing []string
	for _, name := range Tools {
		path, err := binaryPath(name)
		if err != nil {
			return nil, err
		}
		if !isExecutable(path) {
			missing = append(missing, name)
		}
	}
	return missing, nil
}

// versionKeys maps each program to its line in scripts/versions.env. promtool is not one of
// Tools: only the monitoring test needs it, and Binary builds it on first use.
var versionKeys = map[string]string{"etcd": "ETCD_VERSION", "kube-apiserver": "KUBE_VERSION", "vault": "VAULT_VERSION", "promtool": "PROMETHEUS_VERSION"}

// Binary returns the path of etcd, kube-apiserver, vault or promtool at the version pinned in
// scripts/versions.env, building it with scripts/build-tools.sh when it is missing (progress on
// standard error).
func Binary(name string) (string, error) {
	return BinaryContext(context.Background(), name, os.Stderr)
}

// BinaryContext is Binary with a context that cancels a build and a writer for its progress.
func BinaryContext(ctx context.Context, name string, progress io.Writer) (string, error) {
	path, err := binaryPath(name)
	if err != nil {
		return "", err
	}
	if isExecutable(path) {
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if err := ensureBinary(ctx, progress, root, name, path); err != nil {
		return "", err
	}
	return path, nil
}

// binaryPath returns where the pinned version of name is built: <BinDir>/<name>-<version>.
func binaryPath(name string) (string, error) {
	key, ok := versionKeys[name]
	if !ok {
		return "", fmt.Errorf("testenv: unknown program %q", name)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	versions, err := readVersions(root)
	if err != nil {
		return "", fmt.Errorf("testenv: read versions: %w", err)
	}
	v := versions[key]
	if v == "" {
		return "", fmt.Errorf("testenv: %s missing from scripts/versions.env", key)
	}
	binDir, err := BinDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(binDir, name+"-"+v), nil
}

// ensureBinary runs scripts/build-tools.sh NAME (or $CLUSTERPKI_BUILD_TOOLS NAME) when path is
// not an executable yet, its output going to a log file beside the binaries. A lock file keeps
// parallel test packages from building the same tool twice; whoever waits for it reports that
// too.
func ensureBinary(ctx context.Context, progress io.Writer, root, name, path string) error {
	binDir := filepath.Dir(path)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(binDir, "."+name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	tool := filepath.Base(path)
	if err := waitLock(ctx, progress, lock, tool); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	// Someone else may have built it while we waited for the lock.
	if isExecutable(path) {
		return nil
	}
	script := os.Getenv(BuildToolsEnv)
	if script == "" {
		script = filepath.Join(root, "scripts", "build-tools.sh")
	}
	logPath := filepath.Join(binDir, "."+tool+".build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(progress, "building %s from source: %s on 2 cores, once — later runs use %s (log %s)\n",
		tool, typicalBuild[name], path, logPath)
	cmd := exec.CommandContext(ctx, "bash", script, name)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The build runs in its own process group so that cancelling stops go build too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	if err := proc.Spawn(cmd); err != nil {
		return fmt.Errorf("testenv: build %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	err = tick(progress, done, func(elapsed time.Duration) string {
		return fmt.Sprintf("building %s: %v elapsed (once; cached afterwards)", tool, elapsed)
	})
	if err != nil {
		return fmt.Errorf("testenv: build %s failed after %v: %w; log %s:\n%s", tool, time.Since(start).Round(time.Second), err, logPath, Tail(logPath, 20))
	}
	if !isExecutable(path) {
		return fmt.Errorf("testenv: %s %s did not produce %s; log %s:\n%s", script, name, path, logPath, Tail(logPath, 20))
	}
	fmt.Fprintf(progress, "built %s in %v (cached in %s)\n", tool, time.Since(start).Round(time.Second), binDir)
	return nil
}

// waitLock takes lock exclusively, reporting every ProgressInterval while another process holds
// it (another test package building the same tool).
func waitLock(ctx context.Context, progress io.Writer, lock *os.File, tool string) error {
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		return err
	}
	fmt.Fprintf(progress, "waiting for another process that is building %s\n", tool)
	done := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
				done <- err
				return
			}
			if ctx.Err() != nil {
				done <- ctx.Err()
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return tick(progress, done, func(elapsed time.Duration) string {
		return fmt.Sprintf("waiting for another process's build of %s: %v elapsed", tool, elapsed)
	})
}

// tick writes line(elapsed) every ProgressInterval until done delivers, and returns what it
// delivered.
func tick(progress io.Writer, done <-chan error, line func(time.Duration) string) error {
	start := time.Now()
	t := time.NewTicker(ProgressInterval)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			fmt.Fprintln(progress, line(time.Since(start).Round(time.Second)))
		}
	}
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
