package ca

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// Defaults applied when a spec leaves a field empty (the CRD defaults most of them;
// these keep the controller correct for objects written before a default existed).
const (
	defaultRootTTL       = 87600 * time.Hour
	defaultIssuingTTL    = 43800 * time.Hour
	defaultExpiryWarning = 720 * time.Hour
	defaultRoleMaxTTL    = 8760 * time.Hour
	defaultOverlap       = 24 * time.Hour
)

// Mounts are the Vault paths of one CA (see pkg/pkipath for the layout).
type Mounts = pkipath.Mounts

// parseDuration parses an optional Go duration, falling back to def when empty.
func parseDuration(field, value string, def time.Duration) (time.Duration, error) {
	if value == "" {
		return def, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration", field, value)
	}
	return d, nil
}

// Plan is a CA spec resolved into the values the controller applies.
type Plan struct {
	Mounts        Mounts
	RootCN        string
	RootOrg       []string
	RootTTL       time.Duration
	RootKeyType   string
	RootKeyBits   int
	ExpiryWarning time.Duration
	// RootRotateBefore starts a root rotation when the root has less left (0: only on request).
	RootRotateBefore time.Duration
	// RotationOverlap is how long both roots stay trusted after every Certificate moved.
	RotationOverlap time.Duration
	IssuingCN       string
	IssuingTTL      time.Duration
	RotateBefore    time.Duration
	IssuingKey      string
	IssuingBits     int
	Roles           []RolePlan
}

// RolePlan is one Vault role as the controller writes it.
type RolePlan struct {
	Name   string
	Params map[string]any
}

// keyBits resolves the key size for a Vault key type (0 lets Vault choose for ed25519).
func keyBits(keyType v1alpha1.VaultKeyType, bits *int32) (string, int) {
	kt := string(keyType)
	if kt == "" {
		kt = string(v1alpha1.VaultKeyTypeEC)
	}
	if bits != nil {
		return kt, int(*bits)
	}
	switch kt {
	case "rsa":
		return kt, 2048
	case "ec":
		return kt, 256
	}
	return kt, 0
}

// PlanFor resolves the spec of a CA in namespace; an error names the offending field and
// means the spec is invalid (no retry until it changes).
func PlanFor(prefix, namespace string, spec *v1alpha1.CertificateAuthoritySpec) (*Plan, error) {
	mounts, err := pkipath.For(prefix, namespace, spec.ClusterID)
	if err != nil {
		return nil, fmt.Errorf("spec.clusterID: %w", err)
	}
	p := &Plan{Mounts: mounts, RootCN: spec.Root.CommonName, RootOrg: spec.Root.Organization}
	if p.RootTTL, err = parseDuration("spec.root.ttl", spec.Root.TTL, defaultRootTTL); err != nil {
		return nil, err
	}
	if p.ExpiryWarning, err = parseDuration("spec.root.expiryWarning", spec.Root.ExpiryWarning, defaultExpiryWarning); err != nil {
		return nil, err
	}
	if p.RootRotateBefore, err = parseDuration("spec.root.rotateBefore", spec.Root.RotateBefore, 0); err != nil {
		return nil, err
	}
	if p.RotationOverlap, err = parseDuration("spec.root.rotationOverlap", spec.Root.RotationOverlap, defaultOverlap); err != nil {
		return nil, err
	}
	if p.IssuingTTL, err = parseDuration("spec.issuing.ttl", spec.Issuing.TTL, defaultIssuingTTL); err != nil {
		return nil, err
	}
	if p.IssuingTTL >= p.RootTTL {
		return nil, fmt.Errorf("spec.issuing.ttl (%s) must be shorter than spec.root.ttl (%s)", p.IssuingTTL, p.RootTTL)
	}
	if p.RotateBefore, err = parseDuration("spec.issuing.rotateBefore", spec.Issuing.RotateBefore, p.IssuingTTL/3); err != nil {
		return nil, err
	}
	if p.RotateBefore >= p.IssuingTTL {
		return nil, fmt.Errorf("spec.issuing.rotateBefore (%s) must be shorter than spec.issuing.ttl (%s)", p.RotateBefore, p.IssuingTTL)
	}
	p.RootKeyType, p.RootKeyBits = keyBits(spec.Root.KeyType, spec.Root.KeyBits)
	p.IssuingKey, p.IssuingBits = keyBits(spec.Issuing.KeyType, spec.Issuing.KeyBits)
	p.IssuingCN = spec.Issuing.CommonName
	if p.IssuingCN == "" {
		p.IssuingCN = spec.Root.CommonName + " Issuing CA"
	}
	seen := map[string]bool{}
	for i := range spec.Roles {
		r := &spec.Roles[i]
		if seen[r.Name] {
			return nil, fmt.Errorf("spec.roles[%d].name: duplicate role %q", i, r.Name)
		}
		seen[r.Name] = true
		params, err := roleParams(r)
		if err != nil {
			return nil, fmt.Errorf("spec.roles[%d]: %w", i, err)
		}
		p.Roles = append(p.Roles, RolePlan{Name: r.Name, Params: params})
	}
	return p, nil
}

// roleParams maps a profile onto the parameters of a Vault PKI role.
func roleParams(r *v1alpha1.RoleSpec) (map[string]any, error) {
	maxTTL, err := parseDuration("maxTTL", r.MaxTTL, defaultRoleMaxTTL)
	if err != nil {
		return nil, err
	}
	enforce := true
	if r.EnforceHostnames != nil {
		enforce = *r.EnforceHostnames
	}
	glob := false
	for _, d := range r.AllowedDomains {
		if strings.Contains(d, "*") {
			glob = true
		}
	}
	keyUsages := []string{"DigitalSignature", "KeyEncipherment"}
	if len(r.KeyUsages) > 0 {
		keyUsages = keyUsages[:0]
		for _, u := range r.KeyUsages {
			keyUsages = append(keyUsages, string(u))
		}
	}
	ext := map[v1alpha1.ExtKeyUsage]bool{}
	if len(r.ExtKeyUsages) == 0 {
		ext["ServerAuth"], ext["ClientAuth"] = true, true
	}
	for _, u := range r.ExtKeyUsages {
		ext[u] = true
	}
	var other []string
	for _, u := range []v1alpha1.ExtKeyUsage{"TimeStamping", "OCSPSigning"} {
		if ext[u] {
			other = append(other, string(u))
		}
	}
	return map[string]any{
		"issuer_ref":                  "default",
		"allowed_domains":             sortedCopy(r.AllowedDomains),
		"allow_subdomains":            r.AllowSubdomains,
		"allow_bare_domains":          r.AllowBareDomains,
		"allow_glob_domains":          glob,
		"allow_localhost":             r.AllowLocalhost,
		"allow_any_name":              r.AllowAnyName,
		"allow_ip_sans":               r.AllowIPSANs,
		"allow_wildcard_certificates": true,
		"allowed_uri_sans":            sortedCopy(r.AllowedURISANs),
		"enforce_hostnames":           enforce,
		"organization":                sortedCopy(r.Organizations),
		"key_usage":                   sortedCopy(keyUsages),
		"ext_key_usage":               sortedCopy(other),
		"server_flag":                 ext["ServerAuth"],
		"client_flag":                 ext["ClientAuth"],
		"code_signing_flag":           ext["CodeSigning"],
		"email_protection_flag":       ext["EmailProtection"],
		"max_ttl":                     int64(maxTTL / time.Second),
		"key_type":                    "any",
		"use_csr_common_name":         true,
		"use_csr_sans":                true,
		"require_cn":                  false,
		"no_store":                    !r.StoreCertificates,
		"generate_lease":              false,
	}, nil
}

// sortedCopy returns a sorted copy of a string slice, never nil (Vault returns [] for empty lists).
func sortedCopy(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}
