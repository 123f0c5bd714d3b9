package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/test/kit/proc"
)

func (e *Env) vaultFile(name string) string { return filepath.Join(e.Dir, "vault", name) }

// writeVaultConfig writes a server config with file storage under Dir/vault/data.
func (e *Env) writeVaultConfig() error {
	cfg := fmt.Sprintf(`storage "file" {
  path = %q
}

listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}

api_addr      = %q
disable_mlock = true
ui            = false
`, e.vaultFile("data"), e.vaultPort, e.VaultAddr)
	return os.WriteFile(e.vaultFile("config.hcl"), []byte(cfg), 0o600)
}

func (e *Env) startVaultProcess() error {
	p, err := startProcess("vault", filepath.Join(e.Dir, "vault.log"), proc.EnvWithout("VAULT_"), e.bins.vault,
		"server", "-config="+e.vaultFile("config.hcl"), "-log-level=warn")
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.vault = p
	e.mu.Unlock()
	return nil
}

// initVault waits for Vault to answer, initialises it (1 share, threshold 1)
// unless its storage already is, unseals it and waits until it is active.
func (e *Env) initVault(ctx context.Context) error {
	c, err := e.VaultClient()
	if err != nil {
		return err
	}
	c.ClearToken()
	var status *vault.SealStatusResponse
	if err := poll(ctx, e.vault, e.startLimit, func(ctx context.Context) error {
		status, err = c.Sys().SealStatusWithContext(ctx)
		return err
	}); err != nil {
		return err
	}
	if !status.Initialized {
		resp, err := c.Sys().InitWithContext(ctx, &vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
		if err != nil {
			return fmt.Errorf("testenv: vault init: %w", err)
		}
		if err := writeFiles(map[string][]byte{
			e.vaultFile("unseal-key"): []byte(resp.KeysB64[0] + "\n"),
			e.vaultFile("root-token"): []byte(resp.RootToken + "\n"),
		}); err != nil {
			return err
		}
	}
	key, err1 := os.ReadFile(e.vaultFile("unseal-key"))
	token, err2 := os.ReadFile(e.vaultFile("root-token"))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("testenv: vault storage in %s is initialised but its keys are gone (remove the folder): %w", e.Dir, err)
	}
	e.VaultUnsealKey = strings.TrimSpace(string(key))
	e.VaultRootToken = strings.TrimSpace(string(token))
	if status.Sealed || !status.Initialized {
		if _, err := c.Sys().UnsealWithContext(ctx, e.VaultUnsealKey); err != nil {
			return fmt.Errorf("testenv: vault unseal: %w", err)
		}
	}
	c.SetToken(e.VaultRootToken)
	return poll(ctx, e.vault, e.startLimit, func(ctx context.Context) error {
		h, err := c.Sys().HealthWithContext(ctx)
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed || h.Standby {
			return fmt.Errorf("vault not active: %+v", h)
		}
		// The token store is usable once the root token looks itself up.
		_, err = c.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
}

// StopVault stops the Vault server (SIGTERM, then SIGKILL); its storage stays.
func (e *Env) StopVault() {
	e.mu.Lock()
	p := e.vault
	e.mu.Unlock()
	p.Stop()
}

// StartVault starts Vault again on the same address with the same storage,
// unseals it and waits until it is active. It does nothing if Vault runs.
func (e *Env) StartVault(ctx context.Context) error {
	e.mu.Lock()
	p := e.vault
	e.mu.Unlock()
	if p != nil {
		if done, _ := p.Exited(); !done {
			return nil
		}
	}
	if err := e.startVaultProcess(); err != nil {
		return err
	}
	return e.initVault(ctx)
}

// WriteOperatorPolicy writes the Vault policy an operator ships (deploy/vault/<operator>.hcl of
// RepoRoot) under the name operator.
func (e *Env) WriteOperatorPolicy(ctx context.Context, operator string) error {
	policy, err := os.ReadFile(filepath.Join(e.RepoRoot, "deploy", "vault", operator+".hcl"))
	if err != nil {
		return err
	}
	c, err := e.VaultClient()
	if err != nil {
		return err
	}
	if err := c.Sys().PutPolicyWithContext(ctx, operator, string(policy)); err != nil {
		return fmt.Errorf("testenv: write policy %s: %w", operator, err)
	}
	return nil
}

// PolicyToken returns a new renewable orphan Vault token that holds only policy and lives ttl
// (a Vault duration such as "24h").
func (e *Env) PolicyToken(ctx context.Context, policy, ttl string) (string, error) {
	c, err := e.VaultClient()
	if err != nil {
		return "", err
	}
	renewable := true
	s, err := c.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{
		Policies: []string{policy}, TTL: ttl, NoParent: true, Renewable: &renewable,
	})
	if err != nil {
		return "", fmt.Errorf("testenv: create %s token: %w", policy, err)
	}
	return s.Auth.ClientToken, nil
}
