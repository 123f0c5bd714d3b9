package site

import (
	"context"
	"path/filepath"
)

// Operators names the two operator binaries, as deploy/ names their Deployments.
var Operators = []string{"ca-operator", "cert-operator"}

// BuildOperators builds both operators from the checkout at root into dir with `make build`,
// the way a release builds them, and returns their paths by operator name.
func BuildOperators(ctx context.Context, run Run, root, dir string) (map[string]string, error) {
	if err := run(ctx, nil, "make", "-C", root, "build", "BIN="+dir); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, op := range Operators {
		paths[op] = filepath.Join(dir, op)
	}
	return paths, nil
}
