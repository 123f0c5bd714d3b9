package policy

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
	"github.com/clusterpki/clusterpki/cert-operator/internal/pki"
	"github.com/clusterpki/clusterpki/cert-operator/internal/secret"
)

// Reasons a check gives; they become the reason of the Issuing condition.
const (
	ReasonDoesNotExist      = "DoesNotExist"
	ReasonSecretConflict    = "SecretConflict"
	ReasonMissingData       = "MissingData"
	ReasonInvalidData       = "InvalidData"
	ReasonInvalidKeyPair    = "InvalidKeyPair"
	ReasonTrustOutdated     = "TrustOutdated"
	ReasonRootChanged       = "RootChanged"
	ReasonIncorrectIssuer   = "IncorrectIssuer"
	ReasonSpecChanged       = "SpecChanged"
	ReasonManuallyTriggered = "ManuallyTriggered"
	ReasonRenewing          = "Renewing"
)

// Check looks at one aspect of in and, when it calls for action, returns a reason, a message
// for people, and true.
type Check func(in Input) (reason, message string, triggered bool)

// Chain is a list of checks evaluated in order; the first that triggers decides.
type Chain []Check

// Evaluate returns the first triggered check's reason and message, or false when none triggers.
func (c Chain) Evaluate(in Input) (reason, message string, triggered bool) {
	for _, check := range c {
		if reason, message, triggered = check(in); triggered {
			return reason, message, true
		}
	}
	return "", "", false
}

// Default is the chain the controller uses. A triggered ReasonSecretConflict means "stop": the
// Secret is someone else's; ReasonTrustOutdated means "write the trust bundle into ca.crt",
// the certificate staying; every other reason means "issue a new certificate".
var Default = Chain{
	SecretMissing,
	SecretNotOurs,
	SecretDataMissing,
	SecretDataInvalid,
	KeyDoesNotMatch,
	TrustOutdated,
	RootChanged,
	NotIssuedByCA,
	SpecChanged,
	RenewRequested,
	RenewalDue,
}

// SecretMissing triggers when there is no Secret.
func SecretMissing(in Input) (string, string, bool) {
	if in.Secret == nil {
		return ReasonDoesNotExist, fmt.Sprintf("Secret %q does not exist", in.Certificate.Spec.SecretName), true
	}
	return "", "", false
}

// SecretNotOurs triggers when the Secret is not labelled as this Certificate's.
func SecretNotOurs(in Input) (string, string, bool) {
	if !secret.IsOwnedBy(in.Secret, in.Certificate) {
		return ReasonSecretConflict, fmt.Sprintf("Secret %q exists and is not managed by this Certificate; it is left untouched", in.Secret.Name), true
	}
	return "", "", false
}

// SecretDataMissing triggers when one of tls.crt, tls.key or ca.crt is empty.
func SecretDataMissing(in Input) (string, string, bool) {
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, contract.TrustKey} {
		if len(in.Secret.Data[k]) == 0 {
			return ReasonMissingData, fmt.Sprintf("Secret %q has no %s", in.Secret.Name, k), true
		}
	}
	return "", "", false
}

// SecretDataInvalid triggers when the certificate, key or CA in the Secret does not parse.
func SecretDataInvalid(in Input) (string, string, bool) {
	for _, f := range []struct {
		key string
		err error
	}{{corev1.TLSCertKey, in.Data.CertErr}, {corev1.TLSPrivateKeyKey, in.Data.KeyErr}, {contract.TrustKey, in.Data.CAErr}} {
		if f.err != nil {
			return ReasonInvalidData, fmt.Sprintf("Secret %q has an unreadable %s: %v", in.Secret.Name, f.key, f.err), true
		}
	}
	return "", "", false
}

// KeyDoesNotMatch triggers when the private key is not the certificate's.
func KeyDoesNotMatch(in Input) (string, string, bool) {
	if !pki.PublicKeysEqual(in.Data.Key.Public(), in.Data.Leaf.PublicKey) {
		return ReasonInvalidKeyPair, fmt.Sprintf("the private key in Secret %q does not match its certificate", in.Secret.Name), true
	}
	return "", "", false
}

// RootChanged triggers when the certificate was issued under a CA root other than the current one.
func RootChanged(in Input) (string, string, bool) {
	if got := secret.ProvenanceOf(in.Secret).RootFingerprint; got != in.RootFingerprint {
		return ReasonRootChanged, "the CA's root certificate changed since this certificate was issued", true
	}
	return "", "", false
}

// TrustOutdated triggers when ca.crt does not hold the roots of the CA's trust bundle while
// the certificate chains up to one of them: during a root rotation the bundle gains the new
// root (phase Trusting) and later loses the old one (Retiring), and ca.crt follows in place,
// with no new certificate. A certificate that chains to none of them (one issued under a
// retired root) is left to the checks after it, which re-issue it.
func TrustOutdated(in Input) (string, string, bool) {
	if in.Trust == nil || slices.Equal(in.Data.RootFingerprints, in.TrustFingerprints()) {
		return "", "", false
	}
	if in.Data.VerifyChainTo(in.Trust) != nil {
		return "", "", false
	}
	return ReasonTrustOutdated, fmt.Sprintf("%s in Secret %q does not hold the CA's trust bundle (%d root(s))",
		contract.TrustKey, in.Secret.Name, len(in.TrustFingerprints())), true
}

// NotIssuedByCA triggers when ca.crt does not hold the CA's trust (its trust bundle, or its
// current root when it publishes none), or the certificate does not chain up to one of those
// roots through the intermediates in tls.crt.
func NotIssuedByCA(in Input) (string, string, bool) {
	if !slices.Equal(in.Data.RootFingerprints, in.TrustFingerprints()) {
		what := "the CA's root certificate"
		if in.Trust != nil {
			what = "the CA's trust bundle"
		}
		return ReasonIncorrectIssuer, fmt.Sprintf("%s in Secret %q is not %s", contract.TrustKey, in.Secret.Name, what), true
	}
	if err := in.Data.VerifyChainTo(in.trustedRoots()); err != nil {
		return ReasonIncorrectIssuer, fmt.Sprintf("the certificate in Secret %q does not chain to the CA's root: %v", in.Secret.Name, err), true
	}
	return "", "", false
}

// SpecChanged triggers when the certificate was issued for a different spec.
func SpecChanged(in Input) (string, string, bool) {
	if secret.ProvenanceOf(in.Secret).SpecHash != in.SpecHash {
		return ReasonSpecChanged, "the Certificate's spec changed since its certificate was issued", true
	}
	return "", "", false
}

// RenewRequested triggers when the Certificate's renew annotation holds a value the current
// certificate was not issued for.
func RenewRequested(in Input) (string, string, bool) {
	want := in.Certificate.Annotations[v1alpha1.AnnotationRenew]
	if want != "" && want != secret.ProvenanceOf(in.Secret).RenewRequest {
		return ReasonManuallyTriggered, fmt.Sprintf("renewal requested through the %s annotation (%q)", v1alpha1.AnnotationRenew, want), true
	}
	return "", "", false
}

// RenewalDue triggers once the certificate has expired or its renewal time has come.
func RenewalDue(in Input) (string, string, bool) {
	// Expiry is checked on its own: the renewal time may lie after it when the floor between
	// issuances holds a certificate that Vault made shorter-lived than the floor.
	if !in.Now.Before(in.Data.Leaf.NotAfter) {
		return ReasonRenewing, fmt.Sprintf("the certificate expired at %s", in.Data.Leaf.NotAfter.UTC().Format(time.RFC3339)), true
	}
	if at := RenewalTime(in.Certificate, in.Data.Leaf); !in.Now.Before(at) {
		return ReasonRenewing, fmt.Sprintf("renewal was due at %s", at.UTC().Format(time.RFC3339)), true
	}
	return "", "", false
}
