// Command cert-operator issues the certificates of Certificate objects from their
// CertificateAuthority's issuing CA in Vault into Kubernetes Secrets, and renews them.
package main

import (
	"os"

	"github.com/clusterpki/clusterpki/cert-operator/cmd"
)

func main() {
	if err := cmd.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
