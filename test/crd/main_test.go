// Package crd tests the CRDs against a real kube-apiserver: they install, the shipped
// examples are accepted, invalid objects are refused with a message naming the field,
// and kubectl's explain and printer columns work.
package crd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		root, err := testenv.RepoRoot()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return e.InstallCRDs(ctx, filepath.Join(root, "deploy", "crds"))
	}))
}
