package certificate

import (
	"context"
	"crypto/x509"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/kube"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
	"github.com/clusterpki/clusterpki/pkg/vault"
)

// revoke revokes leaf in Vault on the issuing mount of mounts: by serial when Vault stores
// the role's certificates, otherwise by presenting the certificate. The path is computed from
// our prefix, never read from the CA's status.
func (c *Controller) revoke(ctx context.Context, mounts pkipath.Mounts, role v1alpha1.ProvisionedRole, leaf *x509.Certificate) error {
	path := mounts.RevokePath()
	data := map[string]any{"certificate": string(contract.EncodeCertificates(leaf))}
	if role.StoresCertificates {
		data = map[string]any{"serial_number": contract.Serial(leaf.SerialNumber)}
	}
	_, err := c.vault.Write(ctx, "revoke", path, data)
	return err
}

// revokeReplaced revokes old, the certificate a re-issue just replaced; a failure is reported
// as a Warning event and not retried, since the Secret no longer holds old.
func (c *Controller) revokeReplaced(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate, iss issuer, old *x509.Certificate) {
	serial := contract.Serial(old.SerialNumber)
	if !c.now().Before(old.NotAfter) {
		return
	}
	if err := c.revoke(ctx, iss.mounts, iss.role, old); err != nil {
		c.metrics.revocations.WithLabelValues("reissue", "error").Inc()
		log.WithError(err).WithField("serial", serial).Warn("cannot revoke the replaced certificate")
		c.recorder.Eventf(cert, corev1.EventTypeWarning, EventRevocationFailed, "Could not revoke replaced certificate %s: %v", serial, err)
		return
	}
	c.metrics.revocations.WithLabelValues("reissue", "revoked").Inc()
	c.recorder.Eventf(cert, corev1.EventTypeNormal, EventRevoked, "Revoked replaced certificate %s", serial)
}

// finalize revokes the certificate of a Certificate being deleted, when its policy asks for it,
// then lets the deletion proceed; a Vault outage keeps the finalizer and retries.
func (c *Controller) finalize(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate) error {
	if !kube.HasFinalizer(cert, Finalizer) {
		return nil
	}
	if revokesOnDelete(cert.Spec.RevocationPolicy) {
		if err := c.revokeOnDelete(ctx, log, cert); err != nil {
			return err
		}
	}
	err := kube.RemoveFinalizer(ctx, cert, Finalizer, c.patchCertificate(cert))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// revokeOnDelete revokes the unexpired certificate in cert's Secret, if there is one. A refusal
// by Vault, or a CA that is gone, is reported and does not block the deletion.
func (c *Controller) revokeOnDelete(ctx context.Context, log logrus.FieldLogger, cert *v1alpha1.Certificate) error {
	leaf, err := c.leafToRevoke(ctx, cert)
	if err != nil || leaf == nil {
		return err
	}
	serial := contract.Serial(leaf.SerialNumber)
	ca, err := c.cas.CertificateAuthorities(cert.Namespace).Get(cert.Spec.CARef.Name)
	if apierrors.IsNotFound(err) {
		c.recorder.Eventf(cert, corev1.EventTypeWarning, EventRevocationSkipped,
			"Certificate %s not revoked: CertificateAuthority %q no longer exists", serial, cert.Spec.CARef.Name)
		return nil
	}
	if err != nil {
		return err
	}
	role, ok := findRole(ca, cert.Spec.Role)
	if !ok && len(ca.Status.Roles) > 0 {
		role = ca.Status.Roles[0] // every role of a CA shares its revoke path
		role.StoresCertificates = false
	}
	mounts, err := pkipath.For(c.mountPrefix, cert.Namespace, ca.Spec.ClusterID)
	if err != nil {
		c.recorder.Eventf(cert, corev1.EventTypeWarning, EventRevocationSkipped,
			"Certificate %s not revoked: CertificateAuthority %q has no valid Vault path: %v", serial, ca.Name, err)
		return nil
	}
	if err := c.revoke(ctx, mounts, role, leaf); err != nil {
		if msg, refused := vault.Refusal(err); refused {
			c.metrics.revocations.WithLabelValues("delete", "refused").Inc()
			c.recorder.Eventf(cert, corev1.EventTypeWarning, EventRevocationFailed, "Vault refused to revoke certificate %s: %s", serial, msg)
			return nil
		}
		c.metrics.revocations.WithLabelValues("delete", "error").Inc()
		return err
	}
	c.metrics.revocations.WithLabelValues("delete", "revoked").Inc()
	log.WithField("serial", serial).Info("revoked certificate")
	c.recorder.Eventf(cert, corev1.EventTypeNormal, EventRevoked, "Revoked certificate %s", serial)
	return nil
}
