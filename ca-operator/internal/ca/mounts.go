package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

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
// reports whether it enabled the mount just now: such a mount is known to be empty.
func (c *Controller) ensureMount(ctx context.Context, ca *v1alpha1.CertificateAuthority, path, owner string, maxTTL time.Duration) (created bool, err error) {
	if ca.Status.RootMount == "" {
		// A CA that never recorded its mounts is new: its mounts are almost always missing, so
		// enable first, one Vault call instead of two. A mount already there refuses ("path is
		// already in use") and is left as it is; it is then read and checked as below.
		err := c.pki.enableMount(ctx, path, owner, maxTTL)
		if err == nil {
			return true, nil
		}
		if !vault.IsInUse(err) {
			return false, err
		}
	}
	m, err := c.pki.readMount(ctx, path)
	if errors.Is(err, errNoMount) {
		if err := c.pki.enableMount(ctx, path, owner, maxTTL); err != nil {
			return false, err
		}
		// No event of its own: what is made in it next, or the Provisioned event, names it.
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
