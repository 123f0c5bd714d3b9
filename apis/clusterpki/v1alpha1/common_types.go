package v1alpha1

// KeyAlgorithm names the algorithm of a private key.
// +kubebuilder:validation:Enum=ECDSA;RSA;Ed25519
type KeyAlgorithm string

const (
	// KeyAlgorithmECDSA is an ECDSA key on a NIST curve (P-256 or P-384).
	KeyAlgorithmECDSA KeyAlgorithm = "ECDSA"
	// KeyAlgorithmRSA is an RSA key of 2048, 3072 or 4096 bits.
	KeyAlgorithmRSA KeyAlgorithm = "RSA"
	// KeyAlgorithmEd25519 is an Ed25519 key (no size).
	KeyAlgorithmEd25519 KeyAlgorithm = "Ed25519"
)

// Condition types and reasons shared by both kinds.
const (
	// ConditionReady is True when the object is fully provisioned and matches its spec.
	ConditionReady = "Ready"
	// ConditionIssuing is True while a Certificate is being (re-)issued.
	ConditionIssuing = "Issuing"
	// ConditionRootExpiring is True when a CA's root is within its expiry warning window, or
	// (reason RootTooShort) too short-lived for its issuing CA to be rotated.
	ConditionRootExpiring = "RootExpiring"
	// ConditionRootRotating is True while a CA's root rotation runs; its reason is the phase
	// (status.rootRotation.phase), its message what the phase waits for.
	ConditionRootRotating = "RootRotating"
)

// Labels and annotations the operators use.
const (
	// LabelManagedBy marks objects that a clusterpki operator manages.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelCertificate names the Certificate a Secret belongs to.
	LabelCertificate = "clusterpki.dev/certificate"
	// LabelCertificateAuthority names the CertificateAuthority an object belongs to.
	LabelCertificateAuthority = "clusterpki.dev/certificate-authority"
	// LabelClusterID names the tenant cluster an object belongs to.
	LabelClusterID = "clusterpki.dev/cluster-id"
	// AnnotationRenew, on a Certificate, requests a re-issue when its value changes; use a
	// timestamp. A CertificateAuthority does not honour it: its issuing CA is rotated on
	// request with AnnotationRotateIssuer.
	AnnotationRenew = "clusterpki.dev/renew"
	// AnnotationRotateIssuer requests an issuing-CA rotation when its value changes. A request
	// is answered at once, unless the current issuing CA itself answered a request less than
	// 5 minutes ago (the floor between rotations): then it waits for the floor's end, and only
	// the latest value is answered, so a request repeated in a loop rotates at most once per 5m.
	AnnotationRotateIssuer = "clusterpki.dev/rotate-issuer"
	// AnnotationRotateRoot requests a root rotation when its value changes (see
	// status.rootRotation): a new root made in Vault, trusted next to the old one, every
	// Certificate re-issued under it, then the old root retired. A value is answered once.
	// A value set while a rotation runs waits for it to complete, and only the latest one is
	// answered then; a rotation starts at most once per 5 minutes after the last completed.
	AnnotationRotateRoot = "clusterpki.dev/rotate-root"
	// AnnotationSkipRevocation, set to "true" on a Certificate, lets its deletion go ahead at
	// once without revoking its certificate in Vault (for when Vault is gone for good); the
	// skipped serial is named in a Warning event. Without it, revocation at deletion is retried
	// for the cert-operator's --finalizer-timeout (5m by default) and then given up the same way.
	// For a CertificateAuthority, setting spec.deletionPolicy to Retain does the same for the
	// unmounting of its Vault mounts.
	AnnotationSkipRevocation = "clusterpki.dev/skip-revocation"
)
