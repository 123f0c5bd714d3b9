package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to a CA in Vault when its CertificateAuthority is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain keeps both Vault mounts; only the Kubernetes object goes.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyDelete unmounts the root and issuing mounts, destroying the CA.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// VaultKeyType names the key type of a CA key generated inside Vault.
// +kubebuilder:validation:Enum=ec;rsa;ed25519
type VaultKeyType string

// Vault key types.
const (
	VaultKeyTypeEC      VaultKeyType = "ec"
	VaultKeyTypeRSA     VaultKeyType = "rsa"
	VaultKeyTypeEd25519 VaultKeyType = "ed25519"
)

// KeyUsage is an X.509 key usage a role allows.
// +kubebuilder:validation:Enum=DigitalSignature;ContentCommitment;KeyEncipherment;DataEncipherment;KeyAgreement;CertSign;CRLSign
type KeyUsage string

// ExtKeyUsage is an X.509 extended key usage a role sets.
// +kubebuilder:validation:Enum=ServerAuth;ClientAuth;CodeSigning;EmailProtection;TimeStamping;OCSPSigning
type ExtKeyUsage string

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=pkica;pkicas,categories=clusterpki
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterID`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.root.notAfter`
// +kubebuilder:printcolumn:name="Rotation",type=string,JSONPath=`.status.rootRotation.phase`
// +kubebuilder:printcolumn:name="Moved",type=integer,JSONPath=`.status.rootRotation.moved`,priority=1
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.rootRotation.total`,priority=1
// +kubebuilder:printcolumn:name="Root",type=string,JSONPath=`.status.root.fingerprintSHA256`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// CertificateAuthority is the certificate authority of one tenant cluster, kept in Vault as a
// root CA (root mount) that signs only an issuing CA (issuing mount) whose roles sign leaves.
type CertificateAuthority struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the CA hierarchy and its issuance profiles.
	// +required
	Spec CertificateAuthoritySpec `json:"spec"`
	// status reports what is provisioned in Vault and whether it matches the spec.
	// +optional
	Status CertificateAuthorityStatus `json:"status,omitempty"`
}

// CertificateAuthoritySpec is the desired CA hierarchy of one tenant cluster.
// +kubebuilder:validation:XValidation:rule="!has(self.issuing) || !has(self.issuing.ttl) || duration(self.issuing.ttl) < duration(self.root.ttl)",message="spec.issuing.ttl must be shorter than spec.root.ttl"
// +kubebuilder:validation:XValidation:rule="!has(self.root.rotateBefore) || !has(self.issuing) || !has(self.issuing.rotateBefore) || duration(self.root.rotateBefore) > duration(self.issuing.rotateBefore)",message="spec.root.rotateBefore must be longer than spec.issuing.rotateBefore: a root rotation must start while the issuing CA can still be rotated",fieldPath=".root.rotateBefore"
type CertificateAuthoritySpec struct {
	// clusterID identifies the tenant cluster within this namespace. It names the Vault mounts
	// <prefix>/<namespace>/<clusterID>/root and .../issuing (prefix "clusterpki" by default), so
	// it is a DNS label and cannot change. Other namespaces may use the same clusterID: their
	// mounts live under their own namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterID is immutable"
	ClusterID string `json:"clusterID"`

	// root describes the self-signed root CA, whose key is generated inside Vault and never leaves it.
	// +required
	Root RootCASpec `json:"root"`

	// issuing describes the intermediate CA that signs leaf certificates.
	// +optional
	// +kubebuilder:default={}
	Issuing IssuingCASpec `json:"issuing,omitempty"`

	// roles are the named issuance profiles Certificates refer to. Each becomes a Vault role
	// on the issuing mount.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.exists_one(s, s.name == r.name))",message="role names must be unique"
	Roles []RoleSpec `json:"roles,omitempty"`

	// deletionPolicy says what deleting this object does to the CA in Vault: Retain (default)
	// keeps both mounts; Delete unmounts them and destroys the CA. Unmounting is retried for the
	// ca-operator's --finalizer-timeout (5m by default) after the deletion; then the object goes
	// without it and a Warning event names the mounts left in Vault. Changing deletionPolicy to
	// Retain on an object being deleted lets it go at once.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// RootCASpec describes the root CA.
// +kubebuilder:validation:XValidation:rule="!has(self.keyBits) || (self.keyType == 'rsa' && self.keyBits in [2048, 3072, 4096]) || (self.keyType == 'ec' && self.keyBits in [256, 384, 521])",message="keyBits must be 2048, 3072 or 4096 for rsa, 256, 384 or 521 for ec, and unset for ed25519",fieldPath=".keyBits"
// +kubebuilder:validation:XValidation:rule="!has(self.rotateBefore) || duration(self.rotateBefore) < duration(self.ttl)",message="rotateBefore must be shorter than ttl",fieldPath=".rotateBefore"
// +kubebuilder:validation:XValidation:rule="!has(self.rotationOverlap) || duration(self.rotationOverlap) >= duration('1m')",message="rotationOverlap must be at least 1m",fieldPath=".rotationOverlap"
type RootCASpec struct {
	// commonName is the subject common name of the root certificate.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	CommonName string `json:"commonName"`

	// organization is the subject organization of the root certificate.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=64
	Organization []string `json:"organization,omitempty"`

	// ttl is the lifetime of the root certificate, as a Go duration (e.g. 87600h).
	// +optional
	// +kubebuilder:default="87600h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	TTL string `json:"ttl,omitempty"`

	// keyType is the type of the root key: ec (default), rsa or ed25519.
	// +optional
	// +kubebuilder:default=ec
	KeyType VaultKeyType `json:"keyType,omitempty"`

	// keyBits is the key size: 256 (default), 384 or 521 for ec; 2048 (default), 3072 or 4096 for rsa;
	// unset for ed25519.
	// +optional
	KeyBits *int32 `json:"keyBits,omitempty"`

	// expiryWarning is how long before the root expires the RootExpiring condition turns True.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	ExpiryWarning string `json:"expiryWarning,omitempty"`

	// rotateBefore, when set, starts a root rotation by itself once the root has less than this
	// left (see status.rootRotation). Unset (the default), the root is rotated only on request:
	// a new value of the clusterpki.dev/rotate-root annotation. It must be shorter than ttl, and
	// longer than spec.issuing.rotateBefore, so that the rotation starts while the issuing CA
	// can still be rotated.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RotateBefore string `json:"rotateBefore,omitempty"`

	// rotationOverlap is how long both the old and the new root stay trusted (in the ConfigMap
	// and every Secret's ca.crt) after the last Certificate moved to the new root, so consumers
	// that reload their trust slowly pick up the new root before the old one is retired. At
	// least 1m. An overlap that outlasts the old root only keeps an expired root in the bundle,
	// which no client uses.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RotationOverlap string `json:"rotationOverlap,omitempty"`
}

// IssuingCASpec describes the issuing (intermediate) CA.
// +kubebuilder:validation:XValidation:rule="!has(self.keyBits) || (self.keyType == 'rsa' && self.keyBits in [2048, 3072, 4096]) || (self.keyType == 'ec' && self.keyBits in [256, 384, 521])",message="keyBits must be 2048, 3072 or 4096 for rsa, 256, 384 or 521 for ec, and unset for ed25519",fieldPath=".keyBits"
// +kubebuilder:validation:XValidation:rule="!has(self.rotateBefore) || duration(self.rotateBefore) < duration(self.ttl)",message="rotateBefore must be shorter than ttl",fieldPath=".rotateBefore"
type IssuingCASpec struct {
	// commonName is the subject common name of the issuing CA; defaults to the root's
	// common name followed by " Issuing CA".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	CommonName string `json:"commonName,omitempty"`

	// ttl is the lifetime of each issuing CA certificate; it must be shorter than the root's.
	// +optional
	// +kubebuilder:default="43800h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	TTL string `json:"ttl,omitempty"`

	// rotateBefore is how long before the issuing CA expires a new one replaces it.
	// Defaults to a third of ttl. Rotations are at least 5 minutes apart. Once the root has
	// less than rotateBefore (plus a minute) left, every new issuing CA would be born inside
	// this window: the issuing CA is then no longer rotated, and RootExpiring turns True with
	// reason RootTooShort, since the root needs attention.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RotateBefore string `json:"rotateBefore,omitempty"`

	// keyType is the type of the issuing CA key: ec (default), rsa or ed25519.
	// +optional
	// +kubebuilder:default=ec
	KeyType VaultKeyType `json:"keyType,omitempty"`

	// keyBits is the key size, with the same rules as spec.root.keyBits.
	// +optional
	KeyBits *int32 `json:"keyBits,omitempty"`
}

// RoleSpec is one issuance profile: the names, usages and lifetimes a Certificate may ask for.
type RoleSpec struct {
	// name of the profile; Certificates refer to it in spec.role, and it names the Vault role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// allowedDomains are the DNS domains names may be issued under (see allowSubdomains and
	// allowBareDomains). Glob patterns such as *.example.com are allowed.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-zA-Z0-9:]([-a-zA-Z0-9_:]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?)*$`
	AllowedDomains []string `json:"allowedDomains,omitempty"`

	// allowSubdomains allows names below the allowed domains (a.b.example.com for example.com).
	// +optional
	AllowSubdomains bool `json:"allowSubdomains,omitempty"`

	// allowBareDomains allows the allowed domains themselves as names.
	// +optional
	AllowBareDomains bool `json:"allowBareDomains,omitempty"`

	// allowLocalhost allows "localhost" and "localhost.localdomain" as names.
	// +optional
	AllowLocalhost bool `json:"allowLocalhost,omitempty"`

	// allowAnyName allows any common name and DNS SAN. Use with care.
	// +optional
	AllowAnyName bool `json:"allowAnyName,omitempty"`

	// allowIPSANs allows IP addresses as subject alternative names.
	// +optional
	AllowIPSANs bool `json:"allowIPSANs,omitempty"`

	// allowedURISANs are the URI SANs allowed (glob patterns allowed).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	AllowedURISANs []string `json:"allowedURISANs,omitempty"`

	// enforceHostnames requires common names and DNS SANs to be valid hostnames. Turn it off for
	// client certificates whose common name is a user name such as system:kube-scheduler.
	// +optional
	// +kubebuilder:default=true
	EnforceHostnames *bool `json:"enforceHostnames,omitempty"`

	// organizations is the subject organization (O) set on every certificate of this profile,
	// e.g. system:masters for Kubernetes administrators.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=64
	Organizations []string `json:"organizations,omitempty"`

	// keyUsages are the key usages of issued certificates.
	// +optional
	// +kubebuilder:default={DigitalSignature,KeyEncipherment}
	// +kubebuilder:validation:MaxItems=7
	KeyUsages []KeyUsage `json:"keyUsages,omitempty"`

	// extKeyUsages are the extended key usages of issued certificates.
	// +optional
	// +kubebuilder:default={ServerAuth,ClientAuth}
	// +kubebuilder:validation:MaxItems=6
	ExtKeyUsages []ExtKeyUsage `json:"extKeyUsages,omitempty"`

	// maxTTL is the longest lifetime a certificate of this profile may have.
	// +optional
	// +kubebuilder:default="8760h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	MaxTTL string `json:"maxTTL,omitempty"`

	// storeCertificates keeps every issued certificate in Vault (slower). By default Vault
	// stores none and revocation works by presenting the certificate.
	// +optional
	StoreCertificates bool `json:"storeCertificates,omitempty"`
}

// CertificateAuthorityStatus reports the CA as provisioned in Vault.
type CertificateAuthorityStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (with a reason when False) and RootExpiring (True with reason
	// RootExpiring within spec.root.expiryWarning of the root's end, or RootTooShort once the
	// root is too short-lived for the issuing CA to be rotated).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// rootMount is the Vault path of the root CA's mount.
	// +optional
	RootMount string `json:"rootMount,omitempty"`

	// issuingMount is the Vault path of the issuing CA's mount.
	// +optional
	IssuingMount string `json:"issuingMount,omitempty"`

	// roles are the provisioned profiles and the Vault paths Certificates sign with.
	// +optional
	// +listType=map
	// +listMapKey=name
	Roles []ProvisionedRole `json:"roles,omitempty"`

	// root describes the root CA certificate.
	// +optional
	Root *CACertificateStatus `json:"root,omitempty"`

	// issuing describes the current (default) issuing CA certificate.
	// +optional
	Issuing *CACertificateStatus `json:"issuing,omitempty"`

	// configMapName is the ConfigMap (key ca.crt) that publishes the trust bundle.
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// trustBundle is the PEM of every root a client of this CA must trust now: the root, or
	// during a root rotation (from phase Trusting until Retiring) the old and the new root. The
	// ConfigMap's ca.crt holds the same bytes, and the cert-operator writes them into every
	// Secret's ca.crt.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	TrustBundle string `json:"trustBundle,omitempty"`

	// rootRotation reports the last root rotation: running (phase before Completed) or done.
	// +optional
	RootRotation *RootRotationStatus `json:"rootRotation,omitempty"`
}

// RootRotationPhase is the step a root rotation is at.
// +kubebuilder:validation:Enum=Preparing;Trusting;Moving;Overlap;Retiring;Completed
type RootRotationPhase string

// Root rotation phases, in order.
const (
	// RootRotationPreparing: the new root is being made in the root mount (key inside Vault)
	// and cross-signed by the old root; nothing published has changed yet.
	RootRotationPreparing RootRotationPhase = "Preparing"
	// RootRotationTrusting: the trust bundle (ConfigMap and every Secret's ca.crt) holds the
	// old and the new root; issuance still runs under the old root until every issued
	// Certificate's Secret carries the bundle (trusting = total).
	RootRotationTrusting RootRotationPhase = "Trusting"
	// RootRotationMoving: the new root is the root mount's default and signs a new issuing CA;
	// the cert-operator re-issues every Certificate under it, at a bounded rate (moved/total).
	RootRotationMoving RootRotationPhase = "Moving"
	// RootRotationOverlap: every Certificate moved; both roots stay trusted until overlapEnd
	// (spec.root.rotationOverlap after the last one moved).
	RootRotationOverlap RootRotationPhase = "Overlap"
	// RootRotationRetiring: the bundle holds only the new root; the old root, its cross-signed
	// certificate and the old issuing CA's signing are being retired in Vault.
	RootRotationRetiring RootRotationPhase = "Retiring"
	// RootRotationCompleted: the new root is the only root; status.root describes it.
	RootRotationCompleted RootRotationPhase = "Completed"
)

// RootRotationTrigger says what started a root rotation.
// +kubebuilder:validation:Enum=Requested;Automatic
type RootRotationTrigger string

// Root rotation triggers.
const (
	// RootRotationRequested: a new value of the clusterpki.dev/rotate-root annotation.
	RootRotationRequested RootRotationTrigger = "Requested"
	// RootRotationAutomatic: the root entered its last spec.root.rotateBefore of life.
	RootRotationAutomatic RootRotationTrigger = "Automatic"
)

// RootRotationStatus reports a root rotation. Each phase is derived from what Vault holds and
// from the Certificates' status, so either operator may restart at any point of it.
type RootRotationStatus struct {
	// phase is the step the rotation is at: Preparing, Trusting, Moving, Overlap, Retiring,
	// then Completed.
	Phase RootRotationPhase `json:"phase"`
	// trigger is what started it: Requested (the annotation) or Automatic (spec.root.rotateBefore).
	Trigger RootRotationTrigger `json:"trigger"`
	// tag names the rotation in Vault: the new root is the issuer root-<tag> of the root mount,
	// its certificate cross-signed by the old root cross-<tag>. For a request it is derived from
	// the annotation's value, so a value is answered once.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Tag string `json:"tag,omitempty"`
	// lastRequestTag is the tag of the latest clusterpki.dev/rotate-root value answered, by this
	// rotation or an earlier one (an automatic rotation carries it over): that value starts
	// nothing again.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastRequestTag string `json:"lastRequestTag,omitempty"`
	// startTime is when the rotation started.
	StartTime metav1.Time `json:"startTime"`
	// oldRoot is the root being replaced.
	// +optional
	OldRoot *CACertificateStatus `json:"oldRoot,omitempty"`
	// newRoot is the root replacing it (issuerID in the root mount).
	// +optional
	NewRoot *CACertificateStatus `json:"newRoot,omitempty"`
	// crossSigned is the new root's certificate signed by the old root; until retirement every
	// issued chain carries it, so a client that trusts only the old root still accepts
	// certificates issued under the new one.
	// +optional
	CrossSigned *CACertificateStatus `json:"crossSigned,omitempty"`
	// trusting counts the counted Certificates (see total) whose Secret's ca.crt is the trust bundle.
	// +optional
	Trusting int32 `json:"trusting"`
	// moved counts the counted Certificates (see total) issued under the new root.
	// +optional
	Moved int32 `json:"moved"`
	// total counts the Certificates of this CA that hold a certificate (their
	// status.rootFingerprintSHA256 is set), Ready or not: one whose re-issue fails still chains
	// to the old root, so it holds the rotation (a Warning RootRotationStalled names it) rather
	// than lose its trust at retirement; fix or delete it to let the rotation go on. A
	// Certificate never issued has nothing to move; it is issued under the current root.
	// +optional
	Total int32 `json:"total"`
	// overlapEnd is when the old root leaves the trust bundle (set when the last Certificate moved).
	// +optional
	OverlapEnd *metav1.Time `json:"overlapEnd,omitempty"`
	// completionTime is when the old root was retired.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// ProvisionedRole is a profile as it exists in Vault.
type ProvisionedRole struct {
	// name of the profile.
	Name string `json:"name"`
	// signPath is the Vault path that signs CSRs for this profile (<mount>/sign/<name>).
	SignPath string `json:"signPath"`
	// revokePath is the Vault path that revokes certificates of this CA.
	// +optional
	RevokePath string `json:"revokePath,omitempty"`
	// storesCertificates is true when Vault keeps issued certificates, so revocation by serial works.
	// +optional
	StoresCertificates bool `json:"storesCertificates,omitempty"`
}

// CACertificateStatus describes one CA certificate.
type CACertificateStatus struct {
	// issuerID is the Vault issuer ID of this certificate in its mount.
	// +optional
	IssuerID string `json:"issuerID,omitempty"`
	// serialNumber of the certificate, colon-separated hex.
	SerialNumber string `json:"serialNumber"`
	// fingerprintSHA256 is the SHA-256 of the certificate's DER, in hex.
	FingerprintSHA256 string `json:"fingerprintSHA256"`
	// notBefore is the start of the certificate's validity.
	NotBefore metav1.Time `json:"notBefore"`
	// notAfter is the end of the certificate's validity.
	NotAfter metav1.Time `json:"notAfter"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// CertificateAuthorityList is a list of CertificateAuthority.
type CertificateAuthorityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the CertificateAuthorities.
	Items []CertificateAuthority `json:"items"`
}
