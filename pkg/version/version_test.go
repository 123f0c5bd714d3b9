package version

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestString(t *testing.T) {
	oldVersion, oldCommit := Version, Commit
	t.Cleanup(func() { Version, Commit = oldVersion, oldCommit })
	Version, Commit = "v0.1.0", "abc123"

	want := "ca-operator version v0.1.0 (commit abc123, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	assert.Equal(t, want, String("ca-operator"))
}
