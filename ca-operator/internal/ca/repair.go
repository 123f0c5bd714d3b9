package ca

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// repair brings the mounts of an existing CA back to the plan: it reads what is in them and
// writes only what is missing or differs, with an event for every change it makes, and fills
// status as it goes.
func (c *Controller) repair(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (converged, error) {
	root, err := c.ensureRoot(ctx, ca, plan, status)
	if err != nil {
		return converged{}, err
	}
	status.Root = contract.CertificateStatus(root.ID, root.Cert)

	issuing, heldUntil, err := c.ensureIssuing(ctx, ca, plan, root, now)
	if err != nil {
		return converged{}, err
	}
	status.Issuing = contract.CertificateStatus(issuing.ID, issuing.Cert)

	for _, mount := range []string{plan.Mounts.Root, plan.Mounts.Issuing} {
		if err := c.ensureMountConfig(ctx, mount); err != nil {
			return converged{}, err
		}
	}
	if err := c.ensureRoles(ctx, ca, plan); err != nil {
		return converged{}, err
	}
	status.Roles = provisionedRoles(plan)
	return converged{root: root, issuing: issuing, rotationHeldUntil: heldUntil}, nil
}

// ensureRoot returns the root issuer, generating it inside Vault only when the mount has none.
func (c *Controller) ensureRoot(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, status *v1alpha1.CertificateAuthorityStatus) (*issuer, error) {
	root, err := c.pki.defaultIssuer(ctx, plan.Mounts.Root)
	if err != nil {
		return nil, err
	}
	if root == nil {
		if root, err = c.pki.generateRoot(ctx, plan); err != nil {
			return nil, err
		}
		if !c.warnRootRegenerated(ca, plan, status, root) {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootGenerated, "generated root CA %q in %s", plan.RootCN, plan.Mounts.Root)
		}
		return root, nil
	}
	if fp := contract.Fingerprint(root.Cert); status.Root != nil && status.Root.FingerprintSHA256 != fp {
		c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonRootReplaced,
			"the root CA in %s changed outside clusterpki: fingerprint %s replaces %s", plan.Mounts.Root, fp, status.Root.FingerprintSHA256)
	}
	return root, nil
}

// ensureIssuing returns the default issuer of the issuing mount, making a new one from the
// root as IssuingDecision says (none, not from this root, due for replacement, or a rotation
// requested), and when a due rotation waits for the floor, the time it may happen (else zero).
// Issuers that are no longer default stay for CRLs until expired.
func (c *Controller) ensureIssuing(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, root *issuer, now time.Time) (*issuer, time.Time, error) {
	current, err := c.pki.defaultIssuer(ctx, plan.Mounts.Issuing)
	if err != nil {
		return nil, time.Time{}, err
	}
	verdict := IssuingDecision(current, root, plan.RotateBefore, rotationRequestTag(ca), now)
	if !verdict.HeldUntil.IsZero() {
		// The message holds only the floor's end, so the recorder folds repeats into one event.
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRotationDeferred,
			"the issuing CA is replaced at %s, not now (%s): an issuing CA is rotated at most once per %s",
			verdict.HeldUntil.UTC().Format(time.RFC3339), verdict.Why, RotationFloor)
	}
	if verdict.Rotate {
		created, err := c.pki.newIssuingCA(ctx, plan, root, now, issuerName(ca, now))
		if err != nil {
			return nil, time.Time{}, err
		}
		if current == nil {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerCreated, "created issuing CA %s in %s", created.ID, plan.Mounts.Issuing)
		} else {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerRotated,
				"replaced issuing CA %s with %s in %s because %s; the old one stays for CRLs until it expires", current.ID, created.ID, plan.Mounts.Issuing, verdict.Why)
		}
		current = created
	}
	if err := c.retireIssuers(ctx, ca, plan, root, current, now); err != nil {
		return nil, time.Time{}, err
	}
	return current, verdict.HeldUntil, nil
}

// retireIssuers deletes issuing CAs that are no longer default and have expired (so every
// certificate they signed has expired too). The root, imported for the chain, stays.
func (c *Controller) retireIssuers(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, root, current *issuer, now time.Time) error {
	ids, err := c.pki.listIssuers(ctx, plan.Mounts.Issuing)
	if err != nil {
		return err
	}
	// The usual state is the current issuer and the imported root: nothing to look at.
	if len(ids) <= 2 {
		return nil
	}
	for _, id := range ids {
		if id == current.ID {
			continue
		}
		old, err := c.pki.readIssuer(ctx, plan.Mounts.Issuing, id)
		if err != nil || old == nil {
			return err
		}
		if contract.Fingerprint(old.Cert) == contract.Fingerprint(root.Cert) || now.Before(old.Cert.NotAfter) {
			continue
		}
		if err := c.pki.deleteIssuer(ctx, plan.Mounts.Issuing, id); err != nil {
			return err
		}
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerRetired, "retired expired issuing CA %s from %s", id, plan.Mounts.Issuing)
	}
	return nil
}

// ensureMountConfig brings a mount's configuration (mountConfig) in line, writing only what
// differs.
func (c *Controller) ensureMountConfig(ctx context.Context, mount string) error {
	for _, w := range c.mountConfig(mount) {
		if err := c.pki.ensureConfig(ctx, w.path, w.data); err != nil {
			return err
		}
	}
	return nil
}

// ensureRoles creates or updates a Vault role per profile and deletes roles that left the spec.
func (c *Controller) ensureRoles(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan) error {
	mount := plan.Mounts.Issuing
	wanted := map[string]bool{}
	for _, r := range plan.Roles {
		wanted[r.Name] = true
		changed, err := c.pki.ensureRole(ctx, mount, r)
		if err != nil {
			return err
		}
		if changed {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRoleUpdated, "Vault role %s/roles/%s now matches spec", mount, r.Name)
		}
	}
	// The mount is ours (ensureMount checked), so every role on it is ours too.
	existing, err := c.pki.listRoles(ctx, mount)
	if err != nil {
		return err
	}
	for _, name := range existing {
		if wanted[name] {
			continue
		}
		if err := c.pki.deleteRole(ctx, mount, name); err != nil {
			return err
		}
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRoleDeleted, "deleted Vault role %s/roles/%s, no longer in spec", mount, name)
	}
	return nil
}
