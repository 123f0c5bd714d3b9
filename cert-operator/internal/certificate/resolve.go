package certificate

import (
	"crypto/x509"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/pkg/conditions"
	"github.com/clusterpki/clusterpki/pkg/pkipath"
)

// issuer is a Ready CertificateAuthority and the role a Certificate signs with.
type issuer struct {
	ca   *v1alpha1.CertificateAuthority
	role v1alpha1.ProvisionedRole
	// mounts are the CA's Vault mounts, computed from our prefix, the Certificate's namespace
	// and the CA's clusterID: never from the CA's status, which only informs people.
	mounts          pkipath.Mounts
	rootFingerprint string
	// trust is the CA's trust bundle (nil when its status publishes none: the trust is then
	// the root alone), trustFingerprints contract.Fingerprints of it.
	trust             []*x509.Certificate
	trustFingerprints []string
}

// trustPEM returns what a Secret's ca.crt holds when issued from i: the trust bundle, byte
// for byte as status.trustBundle (and so the ConfigMap) has it, or root (the root of the sign
// response) when the CA publishes none.
func (i issuer) trustPEM(root *x509.Certificate) []byte {
	if i.trust != nil {
		return []byte(i.ca.Status.TrustBundle)
	}
	return contract.EncodeCertificates(root)
}

// trustedRoots returns the fingerprints a Secret's ca.crt holds when issued from i with root.
func (i issuer) trustedRoots(root *x509.Certificate) []string {
	if i.trust != nil {
		return i.trustFingerprints
	}
	return []string{contract.Fingerprint(root)}
}

// blocked says why a Certificate cannot be issued now: a Ready condition reason and message.
type blocked struct {
	reason, message string
}

// resolveIssuer finds the Ready CertificateAuthority and provisioned role cert asks for, in
// cert's own namespace; when there is none it says why instead, and returns an error only when
// the cache cannot be read.
func (c *Controller) resolveIssuer(cert *v1alpha1.Certificate) (issuer, *blocked, error) {
	name := cert.Spec.CARef.Name
	ca, err := c.cas.CertificateAuthorities(cert.Namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return issuer{}, &blocked{ReasonCANotFound, fmt.Sprintf("CertificateAuthority %q does not exist in namespace %q", name, cert.Namespace)}, nil
	}
	if err != nil {
		return issuer{}, nil, fmt.Errorf("get certificate authority %s/%s: %w", cert.Namespace, name, err)
	}
	if ready := conditions.Get(ca.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Status != "True" {
		msg := fmt.Sprintf("CertificateAuthority %q is not Ready", name)
		if ready != nil && ready.Reason != "" {
			msg += fmt.Sprintf(" (%s: %s)", ready.Reason, ready.Message)
		}
		return issuer{}, &blocked{ReasonCANotReady, msg}, nil
	}
	fp := rootFingerprint(ca)
	if fp == "" {
		return issuer{}, &blocked{ReasonCANotReady, fmt.Sprintf("CertificateAuthority %q has not published its root certificate", name)}, nil
	}
	mounts, err := pkipath.For(c.mountPrefix, cert.Namespace, ca.Spec.ClusterID)
	if err != nil {
		return issuer{}, &blocked{ReasonCANotReady, fmt.Sprintf("CertificateAuthority %q has no valid Vault path: %v", name, err)}, nil
	}
	role, ok := findRole(ca, cert.Spec.Role)
	if !ok {
		names := make([]string, 0, len(ca.Status.Roles))
		for _, r := range ca.Status.Roles {
			names = append(names, r.Name)
		}
		return issuer{}, &blocked{ReasonRoleNotFound, fmt.Sprintf("CertificateAuthority %q has no role %q (it has: %s)",
			name, cert.Spec.Role, strings.Join(names, ", "))}, nil
	}
	trust, trustFPs, err := c.trustBundles.get(ca)
	if err != nil {
		// Only the ca-operator writes a CA's status; one that names roots the status does not
		// account for is not written into any Secret, and nothing is signed under it.
		return issuer{}, &blocked{ReasonInvalidTrustBundle, fmt.Sprintf("CertificateAuthority %q publishes a trust bundle that is refused: %v", name, err)}, nil
	}
	return issuer{ca: ca, role: role, mounts: mounts, rootFingerprint: fp, trust: trust, trustFingerprints: trustFPs}, nil, nil
}
