// Package version holds the build identity of a clusterpki binary, stamped at link time with
// -ldflags "-X github.com/clusterpki/clusterpki/pkg/version.Version=v0.1.0 -X ...Commit=abc123".
package version

import (
	"fmt"
	"runtime"
)

// Version is the release this binary was built from; "dev" for an unstamped build.
var Version = "dev"

// Commit is the source commit this binary was built from; "unknown" for an unstamped build.
var Commit = "unknown"

// String returns the one-line identity of the binary called name, e.g.
// "ca-operator version v0.1.0 (commit abc123, go1.26.8 linux/amd64)".
func String(name string) string {
	return fmt.Sprintf("%s version %s (commit %s, %s %s/%s)",
		name, Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
