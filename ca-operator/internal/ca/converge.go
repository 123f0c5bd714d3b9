package ca

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// converged is what Vault holds for a CA once converge is done.
type converged struct {
	root, issuing *issuer
	// rotationHeldUntil is when a due rotation of the issuing CA that waits for RotationFloor
	// may happen; zero when none waits.
	rotationHeldUntil time.Time
	// rootLookAt is when a root rotation needs a sync again; zero when none does.
	rootLookAt time.Time
}

// nextLook returns how long after now the CA needs attention again: the issuing CA's rotation,
// a held rotation, a root rotation's next step or automatic start, or the root's expiry
// warning, whichever comes first; zero when none is ahead.
func (v converged) nextLook(plan *Plan, now time.Time) time.Duration {
	var next time.Duration
	looks := []time.Time{
		v.issuing.Cert.NotAfter.Add(-plan.RotateBefore),
		v.rotationHeldUntil,
		v.rootLookAt,
		v.root.Cert.NotAfter.Add(-plan.ExpiryWarning),
	}
	if plan.RootRotateBefore > 0 {
		looks = append(looks, v.root.Cert.NotAfter.Add(-plan.RootRotateBefore)) // an automatic root rotation
	}
	for _, at := range looks {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// converge makes Vault match the plan and fills status with what is there. A new CA, whose
// mounts are both enabled in this sync, is provisioned; an existing one is repaired.
func (c *Controller) converge(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (converged, error) {
	// A CA whose root once lived elsewhere (the layout before mounts moved under the prefix)
	// must not silently get a new root: that would break every consumer's trust.
	if err := c.checkNotMoved(ctx, ca, plan); err != nil {
		return converged{}, err
	}
	status.RootMount, status.IssuingMount = plan.Mounts.Root, plan.Mounts.Issuing
	owner := ownerDescription(ca.Namespace, ca.Name, ca.UID)
	rootCreated, err := c.ensureMount(ctx, ca, plan.Mounts.Root, owner, plan.RootTTL)
	if err != nil {
		return converged{}, err
	}
	issuingCreated, err := c.ensureMount(ctx, ca, plan.Mounts.Issuing, owner, plan.IssuingTTL)
	if err != nil {
		return converged{}, err
	}
	if rootCreated && issuingCreated {
		return c.provision(ctx, ca, plan, status, now)
	}
	// With one mount there already (re-attached, or the other removed behind our back), repair
	// reads both: a mount enabled just now reads as empty, and what is made in it is an event.
	return c.repair(ctx, ca, plan, status, now)
}

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
	status.TrustBundle = string(contract.EncodeCertificates(root.Cert))

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

// repair brings the mounts of an existing CA back to the plan: it reads what is in them and
// writes only what is missing or differs, with an event for every change it makes, and fills
// status as it goes.
func (c *Controller) repair(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (converged, error) {
	// A root rotation goes first: it may make a new root the mount's default, which the
	// steps below then follow.
	rotation, err := c.rotateRoot(ctx, ca, plan, status, now)
	if err != nil {
		return converged{}, err
	}
	root, err := c.ensureRoot(ctx, ca, plan, status)
	if err != nil {
		return converged{}, err
	}
	issuing, heldUntil, err := c.ensureIssuing(ctx, ca, plan, root, now)
	if err != nil {
		return converged{}, err
	}
	// status.root and status.issuing change in one write, so the cert-operator never sees the
	// new root named while the issuing CA is still the old root's.
	status.Root = contract.CertificateStatus(root.ID, root.Cert)
	status.Issuing = contract.CertificateStatus(issuing.ID, issuing.Cert)
	if rotation.retire {
		// Only now: the old chain leaves Vault once the issuing CA is the new root's.
		if err := c.retireOldRoot(ctx, ca, plan, status, rotation.newRoot, now); err != nil {
			return converged{}, err
		}
		// A request that waited for this rotation is decided by the next sync (held by the
		// floor, with its event and its time): look again at once, since the status write
		// that completes the rotation does not bring the CA back by itself.
		rotation.lookAt = now.Add(time.Second)
	}
	bundle := rotation.bundle
	if bundle == nil {
		bundle = []*x509.Certificate{root.Cert}
	}
	status.TrustBundle = string(contract.EncodeCertificates(bundle...))

	for _, mount := range []string{plan.Mounts.Root, plan.Mounts.Issuing} {
		if err := c.ensureMountConfig(ctx, mount); err != nil {
			return converged{}, err
		}
	}
	if err := c.ensureRoles(ctx, ca, plan); err != nil {
		return converged{}, err
	}
	status.Roles = provisionedRoles(plan)
	return converged{root: root, issuing: issuing, rotationHeldUntil: heldUntil, rootLookAt: rotation.lookAt}, nil
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
	// The new root of a rotation becomes the default on purpose (phase Moving): no warning.
	if fp := contract.Fingerprint(root.Cert); status.Root != nil && status.Root.FingerprintSHA256 != fp && !isRotationNewRoot(status, fp) {
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

// isRotationNewRoot reports whether fp is the new root of status's root rotation.
func isRotationNewRoot(status *v1alpha1.CertificateAuthorityStatus, fp string) bool {
	r := status.RootRotation
	return r != nil && r.NewRoot != nil && r.NewRoot.FingerprintSHA256 == fp
}

// retireIssuers deletes issuing CAs that are no longer default and have expired (so every
// certificate they signed has expired too). The roots imported for the chain (during a root
// rotation the old and the new root, self-signed, and the new root cross-signed by the old one,
// which carries the new root's key) stay: a root rotation retires those itself.
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
		if contract.IsSelfSigned(old.Cert) || sameKey(old.Cert, root.Cert) || now.Before(old.Cert.NotAfter) {
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

// laterIssuerName returns name (issuing-<unix seconds>[-<request tag>]) one second later.
func laterIssuerName(name string) string {
	rest, ok := strings.CutPrefix(name, "issuing-")
	if !ok {
		return name + "-1"
	}
	secs, tag, hasTag := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return name + "-1"
	}
	later := fmt.Sprintf("issuing-%d", n+1)
	if hasTag {
		later += "-" + tag
	}
	return later
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
