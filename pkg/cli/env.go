package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envFallbacks are the Vault CLI's own variables, read when the CLUSTERPKI_ one is unset.
var envFallbacks = map[string]string{
	"vault-addr":    "VAULT_ADDR",
	"vault-ca-file": "VAULT_CACERT",
}

// skipEnv are flags that no environment variable sets.
var skipEnv = map[string]bool{"help": true, "version": true}

// EnvName returns the environment variable for flag: prefix_FLAG_IN_UPPER_SNAKE.
func EnvName(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// DescribeEnv appends each flag's environment variable to its help text.
func DescribeEnv(fs *pflag.FlagSet, prefix string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if skipEnv[f.Name] || strings.Contains(f.Usage, "[env ") {
			return
		}
		f.Usage += " [env " + EnvName(prefix, f.Name) + "]"
	})
}

// BindEnv sets every flag of cmd that was not given on the command line from its environment
// variable (prefix_FLAG_IN_UPPER_SNAKE, then VAULT_ADDR or VAULT_CACERT for the matching Vault
// flags), and reports a value that does not parse, naming the variable.
func BindEnv(cmd *cobra.Command, prefix string) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if firstErr != nil || f.Changed || skipEnv[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		value, ok := os.LookupEnv(name)
		if !ok {
			if fallback, has := envFallbacks[f.Name]; has {
				name = fallback
				value, ok = os.LookupEnv(fallback)
			}
		}
		if !ok || value == "" {
			return
		}
		if err := cmd.Flags().Set(f.Name, value); err != nil {
			// The value is not repeated: it may be a token.
			firstErr = fmt.Errorf("environment variable %s is not a valid value for --%s (%s)", name, f.Name, f.Value.Type())
		}
	})
	return firstErr
}
