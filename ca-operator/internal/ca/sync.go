package ca

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/controller"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// sync converges one CertificateAuthority: Vault mounts, root, issuing CA, roles, the
// published ConfigMap, then status. It reads top to bottom as that story.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	cached, err := c.caLister.CertificateAuthorities(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ca := cached.DeepCopy()
	log := c.log.WithFields(map[string]any{"ca": ca.Name, "namespace": ca.Namespace})

	if ca.DeletionTimestamp != nil {
		return c.finalizeWithin(ctx, ca)
	}
	if !kube.HasFinalizer(ca, Finalizer) {
		// Go on with the patched object, so the status write below carries its resourceVersion.
		patched, err := c.addFinalizer(ctx, ca)
		if err != nil {
			return err
		}
		ca = patched
	}

	status := ca.Status.DeepCopy()
	status.ObservedGeneration = ca.Generation
	now := c.now()

	plan, err := PlanFor(c.cfg.MountPrefix, ca.Namespace, &ca.Spec)
	if err != nil {
		// An invalid spec waits for the user: no retry until the spec changes.
		msg := vault.Describe(err)
		c.recorder.Event(ca, corev1.EventTypeWarning, ReasonInvalidSpec, msg)
		c.setReady(status, ca.Generation, now, metav1.ConditionFalse, ReasonInvalidSpec, msg)
		return c.writeStatus(ctx, ca, status)
	}

	next, rootPEM, err := c.converge(ctx, ca, plan, status, now)
	if err == nil {
		err = c.ensureConfigMap(ctx, ca, status, rootPEM)
	}
	if err != nil {
		reason, transient := classify(err)
		// Conditions and events carry Vault's words and our context, never Vault's address.
		msg := vault.Describe(err)
		log.WithField("reason", reason).WithError(err).Warn("CertificateAuthority not ready")
		if !transient || !conditions.IsTrue(status.Conditions, v1alpha1.ConditionReady) ||
			conditions.Get(status.Conditions, v1alpha1.ConditionReady).Reason != reason {
			c.recorder.Event(ca, corev1.EventTypeWarning, reason, msg)
		}
		c.setReady(status, ca.Generation, now, metav1.ConditionFalse, reason, msg)
		if werr := c.writeStatus(ctx, ca, status); werr != nil {
			return werr
		}
		if !transient {
			// A conflict needs a person; look again now and then in case it went away.
			return controller.RequeueAfter(5 * time.Minute)
		}
		return err
	}

	wasReady := conditions.IsTrue(ca.Status.Conditions, v1alpha1.ConditionReady)
	c.setReady(status, ca.Generation, now, metav1.ConditionTrue, ReasonProvisioned,
		fmt.Sprintf("root and issuing CA in Vault mounts %s and %s, %d role(s)", plan.Mounts.Root, plan.Mounts.Issuing, len(plan.Roles)))
	c.setRootExpiring(ca, status, plan, now)
	if err := c.writeStatus(ctx, ca, status); err != nil {
		return err
	}
	if !wasReady {
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonProvisioned, "CA ready to issue: root %s in Vault mount %s, issuing CA %s in %s, %d role(s)",
			status.Root.SerialNumber, plan.Mounts.Root, status.Issuing.SerialNumber, plan.Mounts.Issuing, len(plan.Roles))
	}
	if next > 0 {
		c.ctrl.EnqueueAfter(key, next)
	}
	return nil
}

// converge makes Vault match the plan and fills status with what is there. It returns when
// the CA next needs attention (issuing CA rotation, retirement or root expiry warning).
func (c *Controller) converge(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan,
	status *v1alpha1.CertificateAuthorityStatus, now time.Time) (time.Duration, string, error) {
	owner := ownerDescription(ca.Namespace, ca.Name, ca.UID)
	// A CA whose root once lived elsewhere (the layout before mounts moved under the prefix)
	// must not silently get a new root: that would break every consumer's trust.
	if err := c.checkNotMoved(ctx, ca, plan); err != nil {
		return 0, "", err
	}
	status.RootMount, status.IssuingMount = plan.Mounts.Root, plan.Mounts.Issuing
	// A mount enabled in this sync is known to be empty: nothing in it needs reading first.
	freshRoot, err := c.ensureMount(ctx, ca, plan.Mounts.Root, owner, plan.RootTTL)
	if err != nil {
		return 0, "", err
	}
	freshIssuing, err := c.ensureMount(ctx, ca, plan.Mounts.Issuing, owner, plan.IssuingTTL)
	if err != nil {
		return 0, "", err
	}

	root, err := c.ensureRoot(ctx, ca, plan, status, freshRoot)
	if err != nil {
		return 0, "", err
	}
	status.Root = certStatus(root.ID, root.Cert)

	issuing, rotationHeldUntil, err := c.ensureIssuing(ctx, ca, plan, root, now, freshIssuing)
	if err != nil {
		return 0, "", err
	}
	status.Issuing = certStatus(issuing.ID, issuing.Cert)

	if err := c.ensureMountConfig(ctx, plan.Mounts.Root, freshRoot); err != nil {
		return 0, "", err
	}
	if err := c.ensureMountConfig(ctx, plan.Mounts.Issuing, freshIssuing); err != nil {
		return 0, "", err
	}
	if err := c.ensureRoles(ctx, ca, plan, status, freshIssuing); err != nil {
		return 0, "", err
	}

	// Work that is due later: rotation of the issuing CA, the root expiry warning.
	var next time.Duration
	schedule := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	schedule(issuing.Cert.NotAfter.Add(-plan.RotateBefore))
	schedule(rotationHeldUntil)
	schedule(root.Cert.NotAfter.Add(-plan.ExpiryWarning))
	return next, encodePEM(root.Cert), nil
}

// mountConflictError reports a mount that belongs to someone else.
type mountConflictError struct{ msg string }

func (e *mountConflictError) Error() string { return e.msg }

// migrationRequiredError reports a CA whose root lives at a path the current layout does not
// use: an administrator must move it (deploy/vault/README.md) before the CA is served again.
type migrationRequiredError struct{ msg string }

func (e *migrationRequiredError) Error() string { return e.msg }

// checkNotMoved refuses to provision a CA whose status records a root in another mount than
// the plan's while the plan's root mount does not exist: its root is still at the old path.
func (c *Controller) checkNotMoved(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan) error {
	old := ca.Status.RootMount
	if old == "" || old == plan.Mounts.Root || ca.Status.Root == nil {
		return nil
	}
	if _, err := c.pki.readMount(ctx, plan.Mounts.Root); !errors.Is(err, errNoMount) {
		return err // the new mount exists (nil), or Vault could not tell
	}
	return &migrationRequiredError{fmt.Sprintf(
		"the root CA (SHA-256 %s) is in Vault mount %s, but this CA's mounts now live at %s and %s; "+
			"an administrator moves them there (deploy/vault/README.md, \"Moving an existing PKI under clusterpki\"); "+
			"no new root is made meanwhile", ca.Status.Root.FingerprintSHA256, old, plan.Mounts.Root, plan.Mounts.Issuing)}
}

// ensureMount enables a PKI mount owned by ca, or checks that an existing one is ours. It
// reports whether it enabled the mount just now.
func (c *Controller) ensureMount(ctx context.Context, ca *v1alpha1.CertificateAuthority, path, owner string, maxTTL time.Duration) (bool, error) {
	if ca.Status.RootMount == "" {
		// A CA that never recorded its mounts is new: its mounts are almost always missing, so
		// enable first, one Vault call instead of two. A mount already there refuses ("path is
		// already in use") and is left as it is; it is then read and checked as below.
		err := c.pki.enableMount(ctx, path, owner, maxTTL)
		if err == nil {
			return true, nil
		}
		if !isInUse(err) {
			return false, err
		}
	}
	m, err := c.pki.readMount(ctx, path)
	if errors.Is(err, errNoMount) {
		if err := c.pki.enableMount(ctx, path, owner, maxTTL); err != nil {
			return false, err
		}
		// No event of its own: the Provisioned event that follows names both mounts.
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if m.Type != "pki" {
		return false, &mountConflictError{fmt.Sprintf("Vault mount %s exists and is a %q engine, not pki", path, m.Type)}
	}
	switch who, other := mountOwnership(m.Description, ca.Namespace, ca.Name, ca.UID); who {
	case OwnedByOther:
		return false, &mountConflictError{fmt.Sprintf("Vault mount %s belongs to CertificateAuthority %s; clusterID %q is taken in namespace %s",
			path, other, ca.Spec.ClusterID, ca.Namespace)}
	case NotManaged:
		// No spec field claims a mount: only an administrator marks one (deploy/vault/README.md).
		return false, &mountConflictError{fmt.Sprintf("Vault mount %s exists but is not marked for clusterpki; "+
			"an administrator moves an existing PKI under clusterpki as deploy/vault/README.md describes", path)}
	case Retained:
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonMountReattached,
			"re-attached Vault mount %s, retained for CertificateAuthority %s (deletionPolicy Retain, or marked by an administrator)", path, other)
	}
	if m.Description != owner || m.MaxLeaseTTL != maxTTL {
		return false, c.pki.tuneMount(ctx, path, owner, maxTTL)
	}
	return false, nil
}

// ensureRoot returns the root issuer, generating it inside Vault only when the mount has none.
func (c *Controller) ensureRoot(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, status *v1alpha1.CertificateAuthorityStatus, fresh bool) (*issuer, error) {
	var root *issuer
	if !fresh {
		var err error
		if root, err = c.pki.defaultIssuer(ctx, plan.Mounts.Root); err != nil {
			return nil, err
		}
	}
	if root == nil {
		var err error
		if root, err = c.pki.generateRoot(ctx, plan); err != nil {
			return nil, err
		}
		if status.Root != nil && status.Root.FingerprintSHA256 != Fingerprint(root.Cert) {
			c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonRootReplaced,
				"the root CA in %s was missing and has been generated again: fingerprint %s replaces %s; consumers must trust the new ca.crt",
				plan.Mounts.Root, Fingerprint(root.Cert), status.Root.FingerprintSHA256)
		} else if !fresh {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRootGenerated, "generated root CA %q in %s", plan.RootCN, plan.Mounts.Root)
		}
		return root, nil
	}
	if status.Root != nil && status.Root.FingerprintSHA256 != Fingerprint(root.Cert) {
		c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonRootReplaced,
			"the root CA in %s changed outside clusterpki: fingerprint %s replaces %s", plan.Mounts.Root, Fingerprint(root.Cert), status.Root.FingerprintSHA256)
	}
	return root, nil
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

// ensureIssuing returns the default issuer of the issuing mount, making a new one from the
// root as IssuingDecision says (none, not from this root, due for replacement, or a rotation
// requested), and when a due rotation waits for the floor, the time it may happen (else zero).
// Issuers that are no longer default stay for CRLs until expired.
func (c *Controller) ensureIssuing(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, root *issuer,
	now time.Time, fresh bool) (*issuer, time.Time, error) {
	var current *issuer
	if !fresh {
		var err error
		if current, err = c.pki.defaultIssuer(ctx, plan.Mounts.Issuing); err != nil {
			return nil, time.Time{}, err
		}
	}
	tag := rotationRequestTag(ca)
	verdict := IssuingDecision(current, root, plan.RotateBefore, tag, now)
	if !verdict.HeldUntil.IsZero() {
		// The message holds only the floor's end, so the recorder folds repeats into one event.
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRotationDeferred,
			"the issuing CA is replaced at %s, not now (%s): an issuing CA is rotated at most once per %s",
			verdict.HeldUntil.UTC().Format(time.RFC3339), verdict.Why, RotationFloor)
	}
	if verdict.Rotate {
		newName := fmt.Sprintf("issuing-%d", now.Unix())
		if tag != "" {
			newName += "-" + tag
		}
		created, err := c.pki.newIssuingCA(ctx, plan, root, now, newName)
		if err != nil {
			return nil, time.Time{}, err
		}
		id := created.ID
		if current == nil && !fresh {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerCreated, "created issuing CA %s in %s", id, plan.Mounts.Issuing)
		} else if current != nil {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerRotated,
				"replaced issuing CA %s with %s in %s because %s; the old one stays for CRLs until it expires", current.ID, id, plan.Mounts.Issuing, verdict.Why)
		}
		current = created
	}
	if fresh {
		return current, verdict.HeldUntil, nil
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
		if Fingerprint(old.Cert) == Fingerprint(root.Cert) || now.Before(old.Cert.NotAfter) {
			continue
		}
		if err := c.pki.deleteIssuer(ctx, plan.Mounts.Issuing, id); err != nil {
			return err
		}
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonIssuerRetired, "retired expired issuing CA %s from %s", id, plan.Mounts.Issuing)
	}
	return nil
}

// ensureMountConfig sets the AIA and CRL URLs, CRL auto-rebuild and auto-tidy of a mount.
func (c *Controller) ensureMountConfig(ctx context.Context, mount string, fresh bool) error {
	base := strings.TrimRight(c.cfg.VaultPublicAddr, "/") + "/v1/" + mount
	wants := []struct {
		path string
		data map[string]any
	}{
		{mount + "/config/urls", map[string]any{
			"issuing_certificates":    []string{base + "/ca"},
			"crl_distribution_points": []string{base + "/crl"},
		}},
		{mount + "/config/crl", map[string]any{"auto_rebuild": true, "expiry": "72h"}},
		{mount + "/config/auto-tidy", map[string]any{
			"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true, "interval_duration": 43200,
		}},
	}
	for _, w := range wants {
		if _, err := c.pki.ensureConfig(ctx, w.path, w.data, fresh); err != nil {
			return err
		}
	}
	return nil
}

// ensureRoles creates or updates a Vault role per profile and deletes roles that left the spec.
func (c *Controller) ensureRoles(ctx context.Context, ca *v1alpha1.CertificateAuthority, plan *Plan, status *v1alpha1.CertificateAuthorityStatus, fresh bool) error {
	mount := plan.Mounts.Issuing
	wanted := map[string]bool{}
	roles := make([]v1alpha1.ProvisionedRole, 0, len(plan.Roles))
	for _, r := range plan.Roles {
		wanted[r.Name] = true
		changed, err := c.pki.ensureRole(ctx, mount, r, fresh)
		if err != nil {
			return err
		}
		if changed && !fresh {
			c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonRoleUpdated, "Vault role %s/roles/%s now matches spec", mount, r.Name)
		}
		roles = append(roles, v1alpha1.ProvisionedRole{
			Name:               r.Name,
			SignPath:           plan.Mounts.SignPath(r.Name),
			RevokePath:         plan.Mounts.RevokePath(),
			StoresCertificates: r.Params["no_store"] == false,
		})
	}
	// The mount is ours (ensureMount checked), so every role on it is ours too. A mount
	// enabled in this sync has no others.
	var existing []string
	if !fresh {
		var err error
		if existing, err = c.pki.listRoles(ctx, mount); err != nil {
			return err
		}
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
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	if len(roles) == 0 {
		roles = nil
	}
	status.Roles = roles
	return nil
}

// ensureConfigMap publishes the root certificate in ConfigMap <name>-ca, owned by the CA.
func (c *Controller) ensureConfigMap(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, rootPEM string) error {
	name := ca.Name + "-ca"
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ca.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelCertificateAuthority: ca.Name,
				v1alpha1.LabelClusterID:            ca.Spec.ClusterID,
				v1alpha1.LabelManagedBy:            ManagedByValue,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ca, v1alpha1.SchemeGroupVersion.WithKind("CertificateAuthority"))},
		},
		Data: map[string]string{"ca.crt": rootPEM},
	}
	have, err := c.cmLister.ConfigMaps(ca.Namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		// The lister sees only labelled ConfigMaps; a foreign one of that name makes Create fail.
		if _, err := c.kube.CoreV1().ConfigMaps(ca.Namespace).Create(ctx, want, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return &mountConflictError{fmt.Sprintf("ConfigMap %s/%s exists and was not made by clusterpki", ca.Namespace, name)}
			}
			return fmt.Errorf("create ConfigMap %s: %w", name, err)
		}
		apiWrites.WithLabelValues("configmap").Inc()
	case err != nil:
		return err
	case have.Data["ca.crt"] != rootPEM || !apiequality.Semantic.DeepEqual(have.Labels, want.Labels) ||
		!apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences):
		update := have.DeepCopy()
		update.Labels, update.OwnerReferences, update.Data = want.Labels, want.OwnerReferences, want.Data
		if _, err := c.kube.CoreV1().ConfigMaps(ca.Namespace).Update(ctx, update, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update ConfigMap %s: %w", name, err)
		}
		apiWrites.WithLabelValues("configmap").Inc()
	}
	status.ConfigMapName = name
	return nil
}

// setRootExpiring keeps the RootExpiring condition (rootExpiringCondition) and warns when it
// turns True or its reason changes: the root nears its end, or is too short-lived for the
// issuing CA to be rotated.
func (c *Controller) setRootExpiring(ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus, plan *Plan, now time.Time) {
	if status.Root == nil {
		return
	}
	cond := rootExpiringCondition(status.Root.NotAfter.Time, plan, now)
	if prev := conditions.Get(ca.Status.Conditions, v1alpha1.ConditionRootExpiring); cond.Status == metav1.ConditionTrue &&
		(prev == nil || prev.Status != metav1.ConditionTrue || prev.Reason != cond.Reason) {
		c.recorder.Event(ca, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	conditions.Set(&status.Conditions, cond, ca.Generation, metav1.NewTime(now))
}

// setReady sets the Ready condition.
func (c *Controller) setReady(status *v1alpha1.CertificateAuthorityStatus, generation int64, now time.Time, s metav1.ConditionStatus, reason, msg string) {
	conditions.Set(&status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: s, Reason: reason, Message: msg}, generation, metav1.NewTime(now))
}

// writeStatus writes status only when it changed. A conflict is left to the next event.
func (c *Controller) writeStatus(ctx context.Context, ca *v1alpha1.CertificateAuthority, status *v1alpha1.CertificateAuthorityStatus) error {
	if apiequality.Semantic.DeepEqual(&ca.Status, status) {
		return nil
	}
	update := ca.DeepCopy()
	update.Status = *status
	_, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	apiWrites.WithLabelValues("status").Inc()
	return nil
}

// patchCA returns a PatchFunc that merge-patches ca.
func (c *Controller) patchCA(ca *v1alpha1.CertificateAuthority) kube.PatchFunc {
	return func(ctx context.Context, data []byte) error {
		_, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).Patch(ctx, ca.Name, types.MergePatchType, data, metav1.PatchOptions{})
		if err == nil {
			apiWrites.WithLabelValues("finalizer").Inc()
		}
		return err
	}
}

// addFinalizer adds the finalizer and returns the object as the API server now has it.
func (c *Controller) addFinalizer(ctx context.Context, ca *v1alpha1.CertificateAuthority) (*v1alpha1.CertificateAuthority, error) {
	data, err := kube.FinalizerPatch(ca, append(append([]string{}, ca.Finalizers...), Finalizer))
	if err != nil {
		return nil, err
	}
	patched, err := c.client.ClusterpkiV1alpha1().CertificateAuthorities(ca.Namespace).Patch(ctx, ca.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("add finalizer %s: %w", Finalizer, err)
	}
	apiWrites.WithLabelValues("finalizer").Inc()
	return patched, nil
}

// finalize carries out the deletion policy, then releases the object.
func (c *Controller) finalize(ctx context.Context, ca *v1alpha1.CertificateAuthority) error {
	if !kube.HasFinalizer(ca, Finalizer) {
		return nil
	}
	if ca.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete {
		mounts, err := pkipath.For(c.cfg.MountPrefix, ca.Namespace, ca.Spec.ClusterID)
		if err != nil {
			// Nothing of this CA can be in Vault under a path we would compute.
			return kube.RemoveFinalizer(ctx, ca, Finalizer, c.patchCA(ca))
		}
		for _, path := range []string{mounts.Issuing, mounts.Root} {
			m, err := c.pki.readMount(ctx, path)
			if errors.Is(err, errNoMount) {
				continue
			}
			if err != nil {
				c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonVaultError, "cannot delete the CA yet: %s", vault.Describe(err))
				return err
			}
			// Never destroy a mount someone else owns.
			if who, _ := mountOwnership(m.Description, ca.Namespace, ca.Name, ca.UID); who != OwnedByUs {
				continue
			}
			if err := c.pki.disableMount(ctx, path); err != nil {
				c.recorder.Eventf(ca, corev1.EventTypeWarning, ReasonVaultError, "cannot delete the CA yet: %s", vault.Describe(err))
				return err
			}
		}
		c.recorder.Eventf(ca, corev1.EventTypeNormal, ReasonMountsDeleted, "deleted Vault mounts %s and %s", mounts.Root, mounts.Issuing)
	}
	return kube.RemoveFinalizer(ctx, ca, Finalizer, c.patchCA(ca))
}
