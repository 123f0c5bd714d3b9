package ca

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// VaultClient is the part of the shared Vault client the CA controller uses.
// Every call carries a low-cardinality operation name for metrics.
type VaultClient interface {
	Read(ctx context.Context, op, path string) (*vaultapi.Secret, error)
	List(ctx context.Context, op, path string) ([]string, error)
	Write(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error)
	WriteIdempotent(ctx context.Context, op, path string, data map[string]any) (*vaultapi.Secret, error)
	Delete(ctx context.Context, op, path string) error
}

// mountInfo is what the controller needs to know of a mount.
type mountInfo struct {
	Type        string
	Description string
	MaxLeaseTTL time.Duration
}

// pki wraps the Vault PKI calls of one controller.
type pki struct {
	vault VaultClient
}

// errNoMount reports that a mount does not exist.
var errNoMount = errors.New("mount does not exist")

// readMount returns a mount's type, description and max lease TTL, or errNoMount.
func (p *pki) readMount(ctx context.Context, path string) (*mountInfo, error) {
	s, err := p.vault.Read(ctx, "read-mount", "sys/mounts/"+path)
	if vault.IsMissing(err) || (err == nil && (s == nil || s.Data == nil)) {
		return nil, errNoMount
	}
	if err != nil {
		return nil, fmt.Errorf("read mount %s: %w", path, err)
	}
	m := &mountInfo{}
	m.Type, _ = s.Data["type"].(string)
	m.Description, _ = s.Data["description"].(string)
	if cfg, ok := s.Data["config"].(map[string]any); ok {
		if n, ok := cfg["max_lease_ttl"].(json.Number); ok {
			if secs, err := n.Int64(); err == nil {
				m.MaxLeaseTTL = time.Duration(secs) * time.Second
			}
		}
	}
	return m, nil
}

// enableMount enables a PKI mount with an owner description and max lease TTL.
func (p *pki) enableMount(ctx context.Context, path, description string, maxTTL time.Duration) error {
	_, err := p.vault.Write(ctx, "enable-mount", "sys/mounts/"+path, map[string]any{
		"type":        "pki",
		"description": description,
		"config":      map[string]any{"max_lease_ttl": seconds(maxTTL)},
	})
	if err != nil {
		return fmt.Errorf("enable mount %s: %w", path, err)
	}
	return nil
}

// tuneMount sets a mount's description and max lease TTL.
func (p *pki) tuneMount(ctx context.Context, path, description string, maxTTL time.Duration) error {
	_, err := p.vault.WriteIdempotent(ctx, "tune-mount", "sys/mounts/"+path+"/tune", map[string]any{
		"description":   description,
		"max_lease_ttl": seconds(maxTTL),
	})
	if err != nil {
		return fmt.Errorf("tune mount %s: %w", path, err)
	}
	return nil
}

// disableMount unmounts a mount; a mount already gone is not an error.
func (p *pki) disableMount(ctx context.Context, path string) error {
	if err := p.vault.Delete(ctx, "disable-mount", "sys/mounts/"+path); err != nil && !vault.IsMissing(err) {
		return fmt.Errorf("disable mount %s: %w", path, err)
	}
	return nil
}

// issuer is one CA certificate installed in a mount.
type issuer struct {
	ID   string
	Name string
	Cert *x509.Certificate
	PEM  string
	// KeyID is the issuer's key in the mount ("" for a certificate imported without one);
	// Usage its allowed usages. Both are known only when read with readIssuerRef.
	KeyID string
	Usage string
}

// defaultIssuer returns the mount's default issuer, or nil when it has none. Vault answers
// a read of issuer/default with a 500 when there is none, so ask config/issuers first.
func (p *pki) defaultIssuer(ctx context.Context, mount string) (*issuer, error) {
	id, err := p.defaultIssuerID(ctx, mount)
	if err != nil || id == "" {
		return nil, err
	}
	return p.readIssuer(ctx, mount, id)
}

// defaultIssuerID returns the ID of the mount's default issuer, "" when it has none.
func (p *pki) defaultIssuerID(ctx context.Context, mount string) (string, error) {
	s, err := p.vault.Read(ctx, "read-issuers-config", mount+"/config/issuers")
	if vault.IsMissing(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read default issuer of %s: %w", mount, err)
	}
	if s == nil || s.Data == nil {
		return "", nil
	}
	id, _ := s.Data["default"].(string)
	return id, nil
}

// issuerFrom decodes an issuer read from Vault.
func issuerFrom(mount string, s *vaultapi.Secret) (*issuer, error) {
	id, _ := s.Data["issuer_id"].(string)
	name, _ := s.Data["issuer_name"].(string)
	keyID, _ := s.Data["key_id"].(string)
	usage, _ := s.Data["usage"].(string)
	pemData, _ := s.Data["certificate"].(string)
	if pemData == "" {
		return nil, nil
	}
	cert, err := contract.ParseCertificate([]byte(pemData))
	if err != nil {
		return nil, fmt.Errorf("issuer %s of %s: %w", id, mount, err)
	}
	return &issuer{ID: id, Name: name, Cert: cert, PEM: strings.TrimSpace(pemData) + "\n", KeyID: keyID, Usage: usage}, nil
}

// listIssuers returns the IDs of every issuer in a mount.
func (p *pki) listIssuers(ctx context.Context, mount string) ([]string, error) {
	return p.list(ctx, "list-issuers", mount, "issuers")
}

// list returns the keys under mount/what (issuers, roles); none when the mount has none.
func (p *pki) list(ctx context.Context, op, mount, what string) ([]string, error) {
	keys, err := p.vault.List(ctx, op, mount+"/"+what)
	if vault.IsMissing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s of %s: %w", what, mount, err)
	}
	return keys, nil
}

// readIssuer returns one issuer of a mount by ID.
func (p *pki) readIssuer(ctx context.Context, mount, id string) (*issuer, error) {
	s, err := p.vault.Read(ctx, "read-issuer", mount+"/issuer/"+id+"/json")
	if err != nil {
		return nil, fmt.Errorf("read issuer %s of %s: %w", id, mount, err)
	}
	if s == nil {
		return nil, nil
	}
	return issuerFrom(mount, s)
}

// deleteIssuer removes a retired issuer from a mount.
func (p *pki) deleteIssuer(ctx context.Context, mount, id string) error {
	if err := p.vault.Delete(ctx, "delete-issuer", mount+"/issuer/"+id); err != nil && !vault.IsMissing(err) {
		return fmt.Errorf("delete issuer %s of %s: %w", id, mount, err)
	}
	return nil
}

// generateRoot makes a self-signed root inside the root mount; its key never leaves Vault.
func (p *pki) generateRoot(ctx context.Context, plan *Plan) (*issuer, error) {
	s, err := p.vault.Write(ctx, "generate-root", plan.Mounts.Root+"/root/generate/internal", rootRequest(plan, "root"))
	if err != nil {
		return nil, fmt.Errorf("generate root in %s: %w", plan.Mounts.Root, err)
	}
	root, err := issuerFrom(plan.Mounts.Root, s)
	if err == nil && (root == nil || root.ID == "") {
		err = fmt.Errorf("generate root in %s: Vault returned no issuer", plan.Mounts.Root)
	}
	return root, err
}

// newIssuingCA generates a key and CSR inside the issuing mount, has the root sign it,
// installs the signed certificate with its chain and makes it the default issuer.
func (p *pki) newIssuingCA(ctx context.Context, plan *Plan, root *issuer, now time.Time, name string) (*issuer, error) {
	gen := map[string]any{"common_name": plan.IssuingCN, "key_type": plan.IssuingKey}
	if plan.IssuingBits > 0 {
		gen["key_bits"] = plan.IssuingBits
	}
	s, err := p.vault.Write(ctx, "generate-intermediate", plan.Mounts.Issuing+"/intermediate/generate/internal", gen)
	if err != nil {
		return nil, fmt.Errorf("generate issuing CA key in %s: %w", plan.Mounts.Issuing, err)
	}
	csr, _ := s.Data["csr"].(string)
	if csr == "" {
		return nil, fmt.Errorf("generate issuing CA key in %s: Vault returned no CSR", plan.Mounts.Issuing)
	}
	// The issuing CA may not outlive its root; leave a margin.
	ttl := plan.IssuingTTL
	if remaining := root.Cert.NotAfter.Sub(now) - issuerMargin; remaining < ttl {
		ttl = remaining
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("root of %s has expired; it cannot sign an issuing CA", plan.Mounts.Root)
	}
	signed, err := p.vault.Write(ctx, "sign-intermediate", plan.Mounts.Root+"/root/sign-intermediate", map[string]any{
		"csr":            csr,
		"common_name":    plan.IssuingCN,
		"ttl":            seconds(ttl),
		"format":         "pem",
		"use_csr_values": false,
	})
	if err != nil {
		return nil, fmt.Errorf("sign issuing CA with %s: %w", plan.Mounts.Root, err)
	}
	certPEM, _ := signed.Data["certificate"].(string)
	if certPEM == "" {
		return nil, fmt.Errorf("sign issuing CA with %s: Vault returned no certificate", plan.Mounts.Root)
	}
	set, err := p.vault.Write(ctx, "set-signed", plan.Mounts.Issuing+"/intermediate/set-signed", map[string]any{
		"certificate": signedChain(signed, certPEM, root),
	})
	if err != nil {
		return nil, fmt.Errorf("install issuing CA in %s: %w", plan.Mounts.Issuing, err)
	}
	id := newIssuerID(set)
	if id == "" {
		return nil, fmt.Errorf("install issuing CA in %s: Vault reported no imported issuer with a key", plan.Mounts.Issuing)
	}
	// The name records which rotation request this issuer answered (see rotationRequestTag).
	// An issuing CA made in the same second by a sync that did not finish (a crash between
	// naming it and making it the default) holds the name already: this one takes the next
	// second's, which lastRotation reads one second late.
	for attempt := 0; ; attempt++ {
		_, err = p.vault.WriteIdempotent(ctx, "name-issuer", plan.Mounts.Issuing+"/issuer/"+id, map[string]any{"issuer_name": name})
		if err == nil {
			break
		}
		if !vault.IsInUse(err) || attempt == 10 {
			return nil, fmt.Errorf("name issuer %s of %s: %w", id, plan.Mounts.Issuing, err)
		}
		name = laterIssuerName(name)
	}
	if _, err := p.vault.WriteIdempotent(ctx, "set-default-issuer", plan.Mounts.Issuing+"/config/issuers", map[string]any{"default": id}); err != nil {
		return nil, fmt.Errorf("make issuer %s the default of %s: %w", id, plan.Mounts.Issuing, err)
	}
	cert, err := contract.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, fmt.Errorf("issuing CA signed by %s: %w", plan.Mounts.Root, err)
	}
	return &issuer{ID: id, Name: name, Cert: cert, PEM: strings.TrimSpace(certPEM) + "\n"}, nil
}

// signedChain returns what set-signed installs for an issuing CA just signed: the whole
// ca_chain of the sign-intermediate answer (the issuing CA, the root, and during a root
// rotation the cross-signed new root and the old root, so every leaf's chain carries the cross
// and a client holding only the old root still accepts it), or the certificate and the root
// when Vault sent no chain.
func signedChain(signed *vaultapi.Secret, certPEM string, root *issuer) string {
	var b strings.Builder
	if chain, ok := signed.Data["ca_chain"].([]any); ok {
		for _, c := range chain {
			if pemText, _ := c.(string); strings.TrimSpace(pemText) != "" {
				b.WriteString(strings.TrimSpace(pemText) + "\n")
			}
		}
	}
	if !strings.Contains(b.String(), strings.TrimSpace(certPEM)) {
		return strings.TrimSpace(certPEM) + "\n" + root.PEM
	}
	return b.String()
}

// newIssuerID picks, from a set-signed answer, the imported issuer that has a key
// (the new issuing CA; the root in the chain is imported without one).
func newIssuerID(s *vaultapi.Secret) string {
	if s == nil || s.Data == nil {
		return ""
	}
	if mapping, ok := s.Data["mapping"].(map[string]any); ok {
		for issuerID, keyID := range mapping {
			if k, _ := keyID.(string); k != "" {
				return issuerID
			}
		}
	}
	return ""
}

// ensureConfig writes a config endpoint only when a read shows a value differing from want.
func (p *pki) ensureConfig(ctx context.Context, path string, want map[string]any) error {
	s, err := p.vault.Read(ctx, "read-config", path)
	if err != nil && !vault.IsMissing(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	have := map[string]any{}
	if s != nil && s.Data != nil {
		have = s.Data
	}
	if len(roleDiff(want, have)) == 0 {
		return nil
	}
	return p.writeConfig(ctx, path, want)
}

// writeConfig writes a config endpoint without reading it first.
func (p *pki) writeConfig(ctx context.Context, path string, want map[string]any) error {
	if _, err := p.vault.WriteIdempotent(ctx, "write-config", path, want); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// listRoles returns the role names of a mount.
func (p *pki) listRoles(ctx context.Context, mount string) ([]string, error) {
	return p.list(ctx, "list-roles", mount, "roles")
}

// ensureRole writes a role only when a read shows settings differing from the plan, and
// reports whether it wrote.
func (p *pki) ensureRole(ctx context.Context, mount string, role RolePlan) (bool, error) {
	path := mount + "/roles/" + role.Name
	s, err := p.vault.Read(ctx, "read-role", path)
	if err != nil && !vault.IsMissing(err) {
		return false, fmt.Errorf("read role %s: %w", path, err)
	}
	if s != nil && s.Data != nil && len(roleDiff(role.Params, s.Data)) == 0 {
		return false, nil
	}
	return true, p.writeRole(ctx, mount, role)
}

// writeRole writes a role without reading it first.
func (p *pki) writeRole(ctx context.Context, mount string, role RolePlan) error {
	path := mount + "/roles/" + role.Name
	if _, err := p.vault.WriteIdempotent(ctx, "write-role", path, role.Params); err != nil {
		return fmt.Errorf("write role %s: %w", path, err)
	}
	return nil
}

// deleteRole removes a role; a role already gone is not an error.
func (p *pki) deleteRole(ctx context.Context, mount, name string) error {
	if err := p.vault.Delete(ctx, "delete-role", mount+"/roles/"+name); err != nil && !vault.IsMissing(err) {
		return fmt.Errorf("delete role %s/roles/%s: %w", mount, name, err)
	}
	return nil
}

// seconds renders a duration as Vault's "<n>s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d/time.Second))
}
