// Package crd tests the CRDs against a real kube-apiserver: they install, the shipped
// examples are accepted, invalid objects are refused with a message naming the field,
// and kubectl's explain and printer columns work.
package crd

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/clusterpki/clusterpki/test/kit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) error {
		env = e
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return e.InstallShippedCRDs(ctx)
	}))
}
