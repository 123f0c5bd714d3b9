// Command kubectl-clusterpki is the kubectl plugin for clusterpki (`kubectl clusterpki ...`):
// the state of CertificateAuthorities and Certificates at a glance, a decoded certificate, why
// one is not Ready, renewals and issuing-CA rotations on request, and the published trust.
//
// Install it with `make plugin` (into ./bin) or `go install ./cmd/kubectl-clusterpki` from
// plugin/ (into $GOBIN), and put the folder on PATH: kubectl runs any program named
// kubectl-<name> found there as `kubectl <name>`. (`go install ...@version` from the proxy does
// not work while the module replaces its siblings with local folders.)
package main

import (
	"os"

	"github.com/clusterpki/clusterpki/plugin/internal/commands"
)

func main() {
	os.Exit(commands.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
