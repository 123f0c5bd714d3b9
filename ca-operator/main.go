// Command ca-operator provisions per-cluster certificate authorities in Vault.
package main

import (
	"os"

	"github.com/clusterpki/clusterpki/ca-operator/cmd"
)

func main() {
	if err := cmd.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
