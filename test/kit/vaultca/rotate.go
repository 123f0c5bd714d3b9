package vaultca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// RootRotation is a root rotation of a CA set up by Create, done in Vault with the writes the
// ca-operator makes (ROTATION-DESIGN §1): a new root in the root mount, its certificate
// cross-signed by the old root, then a new issuing CA under it.
type RootRotation struct {
	// Tag names the new root's issuer and key (root-<tag>) and the cross-signed one (cross-<tag>).
	Tag string
	// NewRoot and Cross are the new root and its certificate signed by the old root.
	NewRoot, Cross *x509.Certificate
	// NewRootIssuerID and CrossIssuerID are their issuers in the root mount.
	NewRootIssuerID, CrossIssuerID string
	// Issuing is the issuing CA under the new root (set by MoveIssuance), IssuingIssuerID its
	// issuer in the issuing mount.
	Issuing         *x509.Certificate
	IssuingIssuerID string
}

// PrepareRootRotation makes, in ca's root mount and with client v (the ca-operator's policy
// or root), a new root root-<tag> whose key stays in Vault, and its certificate cross-signed by
// the old root (still the default issuer), named cross-<tag>: steps 1 to 5.
func (ca *CA) PrepareRootRotation(ctx context.Context, v *vaultapi.Client, tag, commonName string) (*RootRotation, error) {
	w := writer(ctx, v)
	r := &RootRotation{Tag: tag}
	name := "root-" + tag
	root, err := w(ca.RootMount+"/root/rotate/internal", map[string]any{
		"common_name": commonName, "key_type": "ec", "key_bits": 256, "ttl": rootTTL,
		"issuer_name": name, "key_name": name})
	if err != nil {
		return nil, err
	}
	r.NewRootIssuerID, _ = root.Data["issuer_id"].(string)
	if r.NewRoot, err = certificateOf(root); err != nil {
		return nil, fmt.Errorf("new root of %s: %w", ca.RootMount, err)
	}
	csr, err := w(ca.RootMount+"/intermediate/cross-sign", map[string]any{"common_name": commonName, "key_ref": name})
	if err != nil {
		return nil, err
	}
	// The cross-signed certificate must end within the old root's life.
	signed, err := w(ca.RootMount+"/root/sign-intermediate", map[string]any{
		"csr": csr.Data["csr"], "use_csr_values": true, "format": "pem", "ttl": "87000h"})
	if err != nil {
		return nil, err
	}
	if r.Cross, err = certificateOf(signed); err != nil {
		return nil, fmt.Errorf("cross-signed root of %s: %w", ca.RootMount, err)
	}
	imported, err := w(ca.RootMount+"/issuers/import/cert", map[string]any{"pem_bundle": signed.Data["certificate"]})
	if err != nil {
		return nil, err
	}
	if ids, ok := imported.Data["imported_issuers"].([]any); ok && len(ids) > 0 {
		r.CrossIssuerID, _ = ids[0].(string)
	}
	if r.CrossIssuerID == "" {
		return nil, errors.New("importing the cross-signed root imported no issuer")
	}
	if _, err := w(ca.RootMount+"/issuer/"+r.CrossIssuerID, map[string]any{"issuer_name": "cross-" + tag}); err != nil {
		return nil, err
	}
	return r, nil
}

// MoveIssuance makes r's new root the root mount's default issuer and key, and a new issuing
// CA signed by it the issuing mount's default, installed with its whole chain (the
// cross-signed root included, so every leaf carries it): steps 6 and 7.
func (ca *CA) MoveIssuance(ctx context.Context, v *vaultapi.Client, r *RootRotation, commonName string) error {
	w := writer(ctx, v)
	name := "root-" + r.Tag
	if _, err := w(ca.RootMount+"/config/issuers", map[string]any{"default": name}); err != nil {
		return err
	}
	if _, err := w(ca.RootMount+"/config/keys", map[string]any{"default": name}); err != nil {
		return err
	}
	issuingCN := commonName + " Issuing CA"
	gen, err := w(ca.IssuingMount+"/intermediate/generate/internal", map[string]any{
		"common_name": issuingCN, "key_type": "ec", "key_bits": 256})
	if err != nil {
		return err
	}
	signed, err := w(ca.RootMount+"/root/sign-intermediate", map[string]any{
		"csr": gen.Data["csr"], "common_name": issuingCN, "ttl": issuingTTL, "format": "pem", "use_csr_values": false})
	if err != nil {
		return err
	}
	if r.Issuing, err = certificateOf(signed); err != nil {
		return fmt.Errorf("issuing CA under the new root: %w", err)
	}
	var chain []string
	if list, ok := signed.Data["ca_chain"].([]any); ok {
		for _, c := range list {
			if s, ok := c.(string); ok {
				chain = append(chain, strings.TrimSpace(s))
			}
		}
	}
	if len(chain) == 0 {
		return errors.New("sign-intermediate answered no ca_chain")
	}
	set, err := w(ca.IssuingMount+"/intermediate/set-signed", map[string]any{"certificate": strings.Join(chain, "\n")})
	if err != nil {
		return err
	}
	// The issuer with a key is the new issuing CA; the others are the roots it imported.
	if mapping, ok := set.Data["mapping"].(map[string]any); ok {
		for id, key := range mapping {
			if k, _ := key.(string); k != "" {
				r.IssuingIssuerID = id
			}
		}
	}
	if r.IssuingIssuerID == "" {
		return errors.New("set-signed imported no issuer with a key")
	}
	if _, err := w(ca.IssuingMount+"/issuer/"+r.IssuingIssuerID, map[string]any{"issuer_name": "issuing-" + r.Tag}); err != nil {
		return err
	}
	_, err = w(ca.IssuingMount+"/config/issuers", map[string]any{"default": r.IssuingIssuerID})
	return err
}

// writer returns a write to Vault with v whose error names the path.
func writer(ctx context.Context, v *vaultapi.Client) func(path string, data map[string]any) (*vaultapi.Secret, error) {
	return func(path string, data map[string]any) (*vaultapi.Secret, error) {
		s, err := v.Logical().WriteWithContext(ctx, path, data)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		if s == nil {
			return nil, fmt.Errorf("write %s: no answer", path)
		}
		return s, nil
	}
}

// certificateOf returns the certificate of a Vault answer.
func certificateOf(s *vaultapi.Secret) (*x509.Certificate, error) {
	pem, _ := s.Data["certificate"].(string)
	return contract.ParseCertificate([]byte(pem))
}
