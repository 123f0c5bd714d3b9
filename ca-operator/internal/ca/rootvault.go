package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// retiredUsage is the usage an old issuing CA keeps after a root rotation: it signs CRLs and
// OCSP answers for what it issued, and nothing new.
const retiredUsage = "read-only,crl-signing,ocsp-signing"

// readIssuerRef returns the issuer of a mount that ref (an ID or a name) names, with its key
// and usage, or nil when there is none.
func (p *pki) readIssuerRef(ctx context.Context, mount, ref string) (*issuer, error) {
	s, err := p.vault.Read(ctx, "read-issuer", mount+"/issuer/"+ref)
	if vault.IsMissing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read issuer %s of %s: %w", ref, mount, err)
	}
	if s == nil {
		return nil, nil
	}
	return issuerFrom(mount, s)
}

// rootRequest returns the body of a root generated inside Vault for plan, named name.
func rootRequest(plan *Plan, name string) map[string]any {
	data := map[string]any{
		"common_name": plan.RootCN,
		"key_type":    plan.RootKeyType,
		"ttl":         seconds(plan.RootTTL),
		"issuer_name": name,
		"key_name":    name,
	}
	if plan.RootKeyBits > 0 {
		data["key_bits"] = plan.RootKeyBits
	}
	if len(plan.RootOrg) > 0 {
		data["organization"] = strings.Join(plan.RootOrg, ",")
	}
	return data
}

// makeNewRoot makes the new root root-<tag> in the root mount, next to the old one and not its
// default (Vault step 1). The name is fixed before the call and Vault refuses a name in use
// atomically, so a repeat (an answer lost) reads the root back instead of making a second one.
func (p *pki) makeNewRoot(ctx context.Context, plan *Plan, tag string) (*issuer, error) {
	name := rootIssuerName(tag)
	s, err := p.vault.Write(ctx, "rotate-root", plan.Mounts.Root+"/root/rotate/internal", rootRequest(plan, name))
	if vault.IsInUse(err) {
		root, err := p.readIssuerRef(ctx, plan.Mounts.Root, name)
		if err == nil && root == nil {
			err = fmt.Errorf("new root %s in %s: Vault says its name is in use but has no such issuer", name, plan.Mounts.Root)
		}
		return root, err
	}
	if err != nil {
		return nil, fmt.Errorf("make new root %s in %s: %w", name, plan.Mounts.Root, err)
	}
	root, err := issuerFrom(plan.Mounts.Root, s)
	if err == nil && (root == nil || root.ID == "" || root.KeyID == "") {
		err = fmt.Errorf("make new root %s in %s: Vault returned no issuer", name, plan.Mounts.Root)
	}
	return root, err
}

// crossSignNewRoot has the old root, still the root mount's default, sign the new root's key
// and subject, and imports the result as the issuer cross-<tag> (Vault steps 2–5). A cross
// imported by an earlier attempt whose answer was lost before it was named is named instead.
func (p *pki) crossSignNewRoot(ctx context.Context, plan *Plan, tag string, oldRoot, newRoot *issuer, now time.Time) (*issuer, error) {
	mount, name := plan.Mounts.Root, crossIssuerName(tag)
	found, err := p.findUnnamedCross(ctx, mount, oldRoot, newRoot)
	if err != nil {
		return nil, err
	}
	if found == nil {
		req := map[string]any{"common_name": plan.RootCN, "key_ref": newRoot.KeyID}
		if len(plan.RootOrg) > 0 {
			req["organization"] = strings.Join(plan.RootOrg, ",")
		}
		// Without key_ref Vault uses the mount's default key: the old root's.
		s, err := p.vault.Write(ctx, "cross-sign-csr", mount+"/intermediate/cross-sign", req)
		if err != nil {
			return nil, fmt.Errorf("cross-sign CSR for %s in %s: %w", rootIssuerName(tag), mount, err)
		}
		csr, _ := s.Data["csr"].(string)
		if csr == "" {
			return nil, fmt.Errorf("cross-sign CSR for %s in %s: Vault returned no CSR", rootIssuerName(tag), mount)
		}
		// The old root refuses to sign past its own end (leaf_not_after_behavior err).
		ttl := plan.RootTTL
		if remaining := oldRoot.Cert.NotAfter.Sub(now) - issuerMargin; remaining < ttl {
			ttl = remaining
		}
		if ttl <= 0 {
			return nil, fmt.Errorf("the old root of %s has expired; it cannot cross-sign the new one", mount)
		}
		signed, err := p.vault.Write(ctx, "sign-intermediate", mount+"/root/sign-intermediate", map[string]any{
			"csr": csr, "use_csr_values": true, "format": "pem", "ttl": seconds(ttl),
		})
		if err != nil {
			return nil, fmt.Errorf("cross-sign %s with the old root of %s: %w", rootIssuerName(tag), mount, err)
		}
		certPEM, _ := signed.Data["certificate"].(string)
		if certPEM == "" {
			return nil, fmt.Errorf("cross-sign %s in %s: Vault returned no certificate", rootIssuerName(tag), mount)
		}
		imported, err := p.vault.Write(ctx, "import-cert", mount+"/issuers/import/cert", map[string]any{"pem_bundle": certPEM})
		if err != nil {
			return nil, fmt.Errorf("import the cross-signed root into %s: %w", mount, err)
		}
		id := importedIssuerID(imported)
		if id == "" {
			return nil, fmt.Errorf("import the cross-signed root into %s: Vault reported no issuer", mount)
		}
		cert, err := contract.ParseCertificate([]byte(certPEM))
		if err != nil {
			return nil, fmt.Errorf("cross-signed root of %s: %w", mount, err)
		}
		found = &issuer{ID: id, Cert: cert, PEM: strings.TrimSpace(certPEM) + "\n", KeyID: newRoot.KeyID}
	}
	if _, err := p.vault.WriteIdempotent(ctx, "name-issuer", mount+"/issuer/"+found.ID, map[string]any{"issuer_name": name}); err != nil {
		return nil, fmt.Errorf("name issuer %s of %s: %w", found.ID, mount, err)
	}
	found.Name = name
	return found, nil
}

// findUnnamedCross returns an unnamed issuer of mount that is newRoot's key and subject signed
// by oldRoot — a cross imported by an attempt whose answer was lost — or nil.
func (p *pki) findUnnamedCross(ctx context.Context, mount string, oldRoot, newRoot *issuer) (*issuer, error) {
	ids, err := p.listIssuers(ctx, mount)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id == oldRoot.ID || id == newRoot.ID {
			continue
		}
		iss, err := p.readIssuerRef(ctx, mount, id)
		if err != nil {
			return nil, err
		}
		if iss != nil && iss.Name == "" && isCrossOf(iss.Cert, newRoot, oldRoot) {
			return iss, nil
		}
	}
	return nil, nil
}

// isCrossOf reports whether cert is newRoot's key and subject signed by oldRoot.
func isCrossOf(cert *x509.Certificate, newRoot, oldRoot *issuer) bool {
	return !contract.IsSelfSigned(cert) && sameKey(cert, newRoot.Cert) && cert.CheckSignatureFrom(oldRoot.Cert) == nil
}

// sameKey reports whether two certificates carry the same public key.
func sameKey(a, b *x509.Certificate) bool {
	return bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo)
}

// importedIssuerID returns the issuer an issuers/import/cert answer names: the one imported,
// or the one that already held the certificate.
func importedIssuerID(s *vaultapi.Secret) string {
	if s == nil || s.Data == nil {
		return ""
	}
	for _, field := range []string{"imported_issuers", "existing_issuers"} {
		if ids, ok := s.Data[field].([]any); ok && len(ids) > 0 {
			if id, _ := ids[0].(string); id != "" {
				return id
			}
		}
	}
	if mapping, ok := s.Data["mapping"].(map[string]any); ok {
		for id := range mapping {
			return id
		}
	}
	return ""
}

// makeDefaultRoot makes the new root the root mount's default key, then its default issuer
// (Vault step 6). The issuer default is the rotation's switch, so it is written last: once it
// shows the new root, the key default does too.
func (p *pki) makeDefaultRoot(ctx context.Context, mount string, newRoot *issuer) error {
	if _, err := p.vault.WriteIdempotent(ctx, "set-default-key", mount+"/config/keys", map[string]any{"default": newRoot.KeyID}); err != nil {
		return fmt.Errorf("make key %s the default of %s: %w", newRoot.KeyID, mount, err)
	}
	if _, err := p.vault.WriteIdempotent(ctx, "set-default-issuer", mount+"/config/issuers", map[string]any{"default": newRoot.ID}); err != nil {
		return fmt.Errorf("make issuer %s the default of %s: %w", newRoot.ID, mount, err)
	}
	return nil
}

// retireRootMount leaves the new root alone in the root mount (Vault step 8): every other
// issuer (the old root, the cross) is deleted, then every key no issuer uses. Each delete of
// what is already gone is done. It refuses while the new root is not the default: deleting the
// default root would stop issuance, and Vault only warns.
func (p *pki) retireRootMount(ctx context.Context, mount string, newRoot *issuer) error {
	def, err := p.defaultIssuer(ctx, mount)
	if err != nil {
		return err
	}
	if def == nil || def.ID != newRoot.ID {
		return fmt.Errorf("retire the old root of %s: the new root %s is not the default issuer", mount, newRoot.ID)
	}
	ids, err := p.listIssuers(ctx, mount)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id != newRoot.ID {
			if err := p.deleteIssuer(ctx, mount, id); err != nil {
				return err
			}
		}
	}
	keys, err := p.list(ctx, "list-keys", mount, "keys")
	if err != nil {
		return err
	}
	for _, id := range keys {
		if id == newRoot.KeyID {
			continue
		}
		if err := p.vault.Delete(ctx, "delete-key", mount+"/key/"+id); err != nil && !vault.IsMissing(err) {
			return fmt.Errorf("delete key %s of %s: %w", id, mount, err)
		}
	}
	return nil
}

// retireIssuingMount removes the old root from the issuing mount's chains (Vault step 9): the
// keyless issuers that are the old root or a cross-signed new root are deleted, so new chains
// end at the new root, and every issuing CA not signed by the new root keeps only the right to
// sign CRLs and OCSP answers for what it issued (retireIssuers deletes it once expired). It
// refuses while the default issuing CA is not the new root's.
func (p *pki) retireIssuingMount(ctx context.Context, mount string, newRoot *issuer, oldRootFP string) error {
	current, err := p.defaultIssuer(ctx, mount)
	if err != nil {
		return err
	}
	if current == nil || current.Cert.CheckSignatureFrom(newRoot.Cert) != nil {
		return fmt.Errorf("retire the old root in %s: the default issuing CA is not signed by the new root yet", mount)
	}
	ids, err := p.listIssuers(ctx, mount)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == current.ID {
			continue
		}
		iss, err := p.readIssuerRef(ctx, mount, id)
		if err != nil {
			return err
		}
		switch {
		case iss == nil:
		case iss.KeyID == "":
			fp := contract.Fingerprint(iss.Cert)
			if fp != contract.Fingerprint(newRoot.Cert) && (fp == oldRootFP || sameKey(iss.Cert, newRoot.Cert)) {
				if err := p.deleteIssuer(ctx, mount, id); err != nil {
					return err
				}
			}
		case iss.Cert.CheckSignatureFrom(newRoot.Cert) != nil && !sameUsage(iss.Usage, retiredUsage):
			// A full POST: the policy grants no PATCH, and the name must be kept.
			if _, err := p.vault.WriteIdempotent(ctx, "retire-issuer", mount+"/issuer/"+id,
				map[string]any{"issuer_name": iss.Name, "usage": retiredUsage}); err != nil {
				return fmt.Errorf("restrict issuer %s of %s to CRL signing: %w", id, mount, err)
			}
		}
	}
	return nil
}

// sameUsage reports whether two comma-separated issuer usages hold the same set.
func sameUsage(a, b string) bool {
	split := func(s string) []string {
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		slices.Sort(parts)
		return parts
	}
	return slices.Equal(split(a), split(b))
}

// rootRotationStatusOf returns the status record of a rotation started now, after last (nil
// when none ran before): the last request answered is carried over, so an automatic rotation,
// whose retirement deletes the root a request made, does not make that request new again.
func rootRotationStatusOf(start RootStart, last *v1alpha1.RootRotationStatus, oldRoot *v1alpha1.CACertificateStatus, now time.Time) *v1alpha1.RootRotationStatus {
	answered := ""
	if last != nil {
		answered = last.LastRequestTag
	}
	if start.Trigger == v1alpha1.RootRotationRequested {
		answered = start.Tag
	}
	return &v1alpha1.RootRotationStatus{Phase: v1alpha1.RootRotationPreparing, Trigger: start.Trigger, Tag: start.Tag,
		LastRequestTag: answered, StartTime: metav1.NewTime(now), OldRoot: oldRoot.DeepCopy()}
}
