package ca

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// provision fills the mounts of a new CA, both enabled in this sync and so known to be empty:
// it writes the root, the issuing CA, the mounts' configuration and the roles without reading
// anything first, and fills status as it goes. Its steps raise no events of their own: the
// Provisioned event that follows names what was made. Only a root that replaces the one status
// recorded (both mounts were removed behind our back) is a Warning: consumers must trust it.
func (c *Controller) provision(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (converged, error) {
	root, err := c.pki.generateRoot(ctx, plan)
	if err != nil {
		return converged{}, err
	}
	c.warnRootRegenerated(ca, plan, status, root)
	status.Root = contract.CertificateStatus(root.ID, root.Cert)

	issuing, err := c.pki.newIssuingCA(ctx, plan, root, now, issuerName(ca, now))
	if err != nil {
		return converged{}, err
	}
	status.Issuing = contract.CertificateStatus(issuing.ID, issuing.Cert)

	for _, mount := range []string{plan.Mounts.Root, plan.Mounts.Issuing} {
		for _, w := range c.mountConfig(mount) {
			if err := c.pki.writeConfig(ctx, w.path, w.data); err != nil {
				return converged{}, err
			}
		}
	}
	for _, r := range plan.Roles {
		if err := c.pki.writeRole(ctx, plan.Mounts.Issuing, r); err != nil {
			return converged{}, err
		}
	}
	status.Roles = provisionedRoles(plan)
	return converged{root: root, issuing: issuing}, nil
}

// warnRootRegenerated raises a Warning when root, generated just now, replaces the root that
// status recorded, and reports whether status recorded one.
func (c *Controller) warnRootRegenerated(ca *v1alpha1.CertificateAuthority, plan *Plan, status *v1alpha1.CertificateAuthorityStatus, root *issuer) bool {
	if status.Root == nil {
		return false
	}
	if fp := contract.Fingerprint(root.Cert); status.Root.FingerprintSHA256 != fp {
		c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonRootReplaced,
			"the root CA in %s was missing and has been generated again: fingerprint %s replaces %s; consumers must trust the new ca.crt",
			plan.Mounts.Root, fp, status.Root.FingerprintSHA256)
	}
	return true
}

// configWrite is one configuration endpoint of a mount and the values it should hold.
type configWrite struct {
	path string
	data map[string]any
}

// mountConfig returns the configuration every mount gets: AIA and CRL URLs, CRL auto-rebuild
// and auto-tidy.
func (c *Controller) mountConfig(mount string) []configWrite {
	base := strings.TrimRight(c.vaultPublicAddr, "/") + "/v1/" + mount
	return []configWrite{
		{mount + "/config/urls", map[string]any{
			"issuing_certificates":    []string{base + "/ca"},
			"crl_distribution_points": []string{base + "/crl"},
		}},
		{mount + "/config/crl", map[string]any{"auto_rebuild": true, "expiry": "72h"}},
		{mount + "/config/auto-tidy", map[string]any{
			"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true, "interval_duration": 43200,
		}},
	}
}

// provisionedRoles returns the roles of plan as status lists them, sorted by name (nil when
// there are none).
func provisionedRoles(plan *Plan) []v1alpha1.ProvisionedRole {
	if len(plan.Roles) == 0 {
		return nil
	}
	roles := make([]v1alpha1.ProvisionedRole, 0, len(plan.Roles))
	for _, r := range plan.Roles {
		roles = append(roles, v1alpha1.ProvisionedRole{
			Name:               r.Name,
			SignPath:           plan.Mounts.SignPath(r.Name),
			RevokePath:         plan.Mounts.RevokePath(),
			StoresCertificates: r.Params["no_store"] == false,
		})
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	return roles
}

// issuerName is the name of an issuing CA made for ca at now: issuing-<unix seconds>, and the
// tag of the rotation request it answers, if any (see lastRotation and rotationRequestTag).
func issuerName(ca *v1alpha1.CertificateAuthority, now time.Time) string {
	name := fmt.Sprintf("issuing-%d", now.Unix())
	if tag := rotationRequestTag(ca); tag != "" {
		name += "-" + tag
	}
	return name
}

// rotationRequestTag is the suffix of an issuer name that records which rotation request
// (the value of the rotate-issuer annotation) it answered, so a request is handled once.
func rotationRequestTag(ca *v1alpha1.CertificateAuthority) string {
	v := ca.Annotations[v1alpha1.AnnotationRotateIssuer]
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}
