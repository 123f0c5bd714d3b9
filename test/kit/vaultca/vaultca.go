// Package vaultca sets up a CertificateAuthority's CA in Vault with the writes the ca-operator
// makes, for the tests that stand in for the ca-operator and for the bench's baseline, which
// measures those writes without the operator: the two mounts of pkg/pkipath recording their
// owner, a root generated inside Vault, an issuing CA whose key is generated inside Vault and
// which the root signs, issuer names and the default issuer, the URL, CRL and auto-tidy
// configuration of both mounts, and the roles.
package vaultca

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// Lifetimes of the CAs, as the ca-operator's defaults: ten years for the root, five for the
// issuing CA.
const (
	rootTTL    = "87600h"
	issuingTTL = "43800h"
)

// Options describe the CA to set up.
type Options struct {
	// Namespace and ClusterID place the mounts (pkipath.For with the default prefix).
	Namespace, ClusterID string
	// CommonName is the root's; the issuing CA is "<CommonName> Issuing CA".
	CommonName string
	// Owner is the mounts' description, which records the CertificateAuthority that owns them.
	Owner string
	// VaultAddr is the address written into the issuing-certificate and CRL URLs.
	VaultAddr string
	// Roles are the issuance roles of the issuing mount, by name, with their Vault settings.
	Roles map[string]map[string]any
}

// CA is a CA set up in Vault.
type CA struct {
	// RootMount and IssuingMount are its mounts.
	RootMount, IssuingMount string
	// Root and Issuing are its certificates, RootPEM and IssuingPEM their PEM.
	Root, Issuing       *x509.Certificate
	RootPEM, IssuingPEM string
	// RootIssuerID and IssuingIssuerID are their issuers in the root and the issuing mount.
	RootIssuerID, IssuingIssuerID string
	// Roles are the names of its roles.
	Roles []string
}

// Create sets up the CA opts describes with client v, whose token needs the ca-operator's
// policy (or root).
func Create(ctx context.Context, v *vaultapi.Client, opts Options) (*CA, error) {
	mounts, err := pkipath.For(pkipath.DefaultPrefix, opts.Namespace, opts.ClusterID)
	if err != nil {
		return nil, err
	}
	ca := &CA{RootMount: mounts.Root, IssuingMount: mounts.Issuing}
	for _, m := range []string{ca.RootMount, ca.IssuingMount} {
		if err := v.Sys().MountWithContext(ctx, m, &vaultapi.MountInput{Type: "pki", Description: opts.Owner,
			Config: vaultapi.MountConfigInput{MaxLeaseTTL: rootTTL}}); err != nil {
			return nil, fmt.Errorf("mount %s: %w", m, err)
		}
	}
	w := func(path string, data map[string]any) (*vaultapi.Secret, error) {
		s, err := v.Logical().WriteWithContext(ctx, path, data)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		return s, nil
	}
	root, err := w(ca.RootMount+"/root/generate/internal", map[string]any{
		"common_name": opts.CommonName, "key_type": "ec", "key_bits": 256, "ttl": rootTTL,
		"issuer_name": "root", "key_name": "root"})
	if err != nil {
		return nil, err
	}
	ca.RootPEM, _ = root.Data["certificate"].(string)
	ca.RootIssuerID, _ = root.Data["issuer_id"].(string)
	issuingCN := opts.CommonName + " Issuing CA"
	gen, err := w(ca.IssuingMount+"/intermediate/generate/internal", map[string]any{
		"common_name": issuingCN, "key_type": "ec", "key_bits": 256})
	if err != nil {
		return nil, err
	}
	signed, err := w(ca.RootMount+"/root/sign-intermediate", map[string]any{
		"csr": gen.Data["csr"], "common_name": issuingCN, "ttl": issuingTTL, "format": "pem", "use_csr_values": false})
	if err != nil {
		return nil, err
	}
	ca.IssuingPEM, _ = signed.Data["certificate"].(string)
	set, err := w(ca.IssuingMount+"/intermediate/set-signed", map[string]any{
		"certificate": strings.TrimSpace(ca.IssuingPEM) + "\n" + ca.RootPEM})
	if err != nil {
		return nil, err
	}
	if ids, ok := set.Data["imported_issuers"].([]any); ok && len(ids) > 0 {
		ca.IssuingIssuerID, _ = ids[0].(string)
	}
	if ca.IssuingIssuerID != "" {
		if _, err := w(ca.IssuingMount+"/issuer/"+ca.IssuingIssuerID, map[string]any{"issuer_name": "issuing"}); err != nil {
			return nil, err
		}
		if _, err := w(ca.IssuingMount+"/config/issuers", map[string]any{"default": ca.IssuingIssuerID}); err != nil {
			return nil, err
		}
	}
	for _, m := range []string{ca.RootMount, ca.IssuingMount} {
		base := strings.TrimRight(opts.VaultAddr, "/") + "/v1/" + m
		for path, data := range map[string]map[string]any{
			"/config/urls": {"issuing_certificates": []string{base + "/ca"}, "crl_distribution_points": []string{base + "/crl"}},
			"/config/crl":  {"auto_rebuild": true, "expiry": "72h"},
			"/config/auto-tidy": {"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true,
				"interval_duration": 43200},
		} {
			if _, err := w(m+path, data); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Roles)) {
		if _, err := w(ca.IssuingMount+"/roles/"+name, opts.Roles[name]); err != nil {
			return nil, err
		}
		ca.Roles = append(ca.Roles, name)
	}
	if ca.Root, err = contract.ParseCertificate([]byte(ca.RootPEM)); err != nil {
		return nil, fmt.Errorf("root of %s: %w", ca.RootMount, err)
	}
	if ca.Issuing, err = contract.ParseCertificate([]byte(ca.IssuingPEM)); err != nil {
		return nil, fmt.Errorf("issuing CA of %s: %w", ca.IssuingMount, err)
	}
	return ca, nil
}

// Status returns the status the ca-operator publishes for the CertificateAuthority caName at
// generation once this CA is Ready.
func (ca *CA) Status(caName string, generation int64, message string) v1alpha1.CertificateAuthorityStatus {
	return contract.ReadyCA{RootMount: ca.RootMount, IssuingMount: ca.IssuingMount, Root: ca.Root, Issuing: ca.Issuing,
		RootIssuerID: ca.RootIssuerID, IssuingIssuerID: ca.IssuingIssuerID, Roles: ca.Roles, Message: message}.Status(caName, generation, metav1.Now())
}
