package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// BinDir returns the folder scripts/build-tools.sh builds into:
// $CLUSTERPKI_BIN, else $XDG_CACHE_HOME/clusterpki/bin, else ~/.cache/clusterpki/bin.
func BinDir() (string, error) {
	if dir := os.Getenv("CLUSTERPKI_BIN"); dir != "" {
		return dir, nil
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

// findBinaries locates (building them if missing) etcd, kube-apiserver and
// Vault at the versions pinned in scripts/versions.env.
func findBinaries() (binaries, error) {
	var b binaries
	for name, dst := range map[string]*string{"etcd": &b.etcd, "kube-apiserver": &b.apiserver, "vault": &b.vault} {
		path, err := Binary(name)
		if err != nil {
			return binaries{}, err
		}
		*dst = path
	}
	return b, nil
}

// versionKeys maps each program to its line in scripts/versions.env.
var versionKeys = map[string]string{"etcd": "ETCD_VERSION", "kube-apiserver": "KUBE_VERSION", "vault": "VAULT_VERSION"}

// Binary returns the path of etcd, kube-apiserver or vault at the version pinned in
// scripts/versions.env, building it with scripts/build-tools.sh when it is missing.
func Binary(name string) (string, error) {
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
	path := filepath.Join(binDir, name+"-"+v)
	if err := ensureBinary(root, binDir, name, path); err != nil {
		return "", err
	}
	return path, nil
}

// ensureBinary runs scripts/build-tools.sh NAME when path is not an
// executable yet. A lock file keeps parallel test packages from building the
// same tool twice.
func ensureBinary(root, binDir, name, path string) error {
	if isExecutable(path) {
		return nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(binDir, "."+name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	// Someone else may have built it while we waited for the lock.
	if isExecutable(path) {
		return nil
	}
	fmt.Fprintf(os.Stderr, "testenv: %s not found, building it with scripts/build-tools.sh %s (takes minutes)\n", path, name)
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "build-tools.sh"), name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testenv: build %s: %w", name, err)
	}
	if !isExecutable(path) {
		return fmt.Errorf("testenv: build-tools.sh %s did not produce %s", name, path)
	}
	return nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
