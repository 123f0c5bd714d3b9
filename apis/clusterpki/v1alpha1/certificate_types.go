package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RevocationPolicy says when the cert-operator revokes a certificate in Vault.
// +kubebuilder:validation:Enum=None;OnDelete;OnReissue;Always
type RevocationPolicy string

const (
	// RevocationPolicyNone never revokes (default).
	RevocationPolicyNone RevocationPolicy = "None"
	// RevocationPolicyOnDelete revokes the current certificate when the Certificate is deleted.
	RevocationPolicyOnDelete RevocationPolicy = "OnDelete"
	// RevocationPolicyOnReissue revokes the previous certificate after it is replaced.
	RevocationPolicyOnReissue RevocationPolicy = "OnReissue"
	// RevocationPolicyAlways revokes on replacement and on deletion.
	RevocationPolicyAlways RevocationPolicy = "Always"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=pkicert;pkicerts,categories=clusterpki
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="CA",type=string,JSONPath=`.spec.caRef.name`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secretName`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Not After",type=string,JSONPath=`.status.notAfter`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Certificate is a key pair made by the cert-operator and signed by a CertificateAuthority's
// issuing CA, kept in a Secret of type kubernetes.io/tls and renewed before it expires.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the certificate to issue.
	// +required
	Spec CertificateSpec `json:"spec"`
	// status reports the certificate currently in the Secret.
	// +optional
	Status CertificateStatus `json:"status,omitempty"`
}

// CertificateSpec is the certificate a user asks for.
// +kubebuilder:validation:XValidation:rule="has(self.commonName) || (has(self.altNames) && size(self.altNames) > 0) || (has(self.ipSANs) && size(self.ipSANs) > 0) || (has(self.uriSANs) && size(self.uriSANs) > 0)",message="a Certificate needs a commonName or at least one of altNames, ipSANs, uriSANs"
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set renewBefore or renewBeforePercentage, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore).getMilliseconds() * 10 <= duration(self.ttl).getMilliseconds() * 9",message="renewBefore must be at most 90% of ttl, so that a certificate is used for at least a tenth of its lifetime before it is renewed",fieldPath=".renewBefore"
type CertificateSpec struct {
	// caRef names the CertificateAuthority, in this Certificate's namespace, that signs it.
	// +required
	CARef CARef `json:"caRef"`

	// role is the issuance profile of that CA (one of its spec.roles) used to sign.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Role string `json:"role"`

	// secretName is the Secret (type kubernetes.io/tls) the key pair is stored in.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName"`

	// commonName is the subject common name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	CommonName string `json:"commonName,omitempty"`

	// altNames are DNS subject alternative names; a leading "*." makes a wildcard.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	AltNames []string `json:"altNames,omitempty"`

	// ipSANs are IPv4 or IPv6 subject alternative names.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address"
	IPSANs []string `json:"ipSANs,omitempty"`

	// uriSANs are URI subject alternative names, e.g. spiffe://cluster.local/ns/x/sa/y.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:items:XValidation:rule="isURL(self)",message="must be an absolute URI"
	URISANs []string `json:"uriSANs,omitempty"`

	// ttl is the requested lifetime, as a Go duration (e.g. 720h), at least 10m. The role's
	// maxTTL caps it. The floor: Vault backdates a certificate's notBefore by 30s, so the
	// lifetime the renewal time is computed from is ttl + 30s; at 10m the backdating is under
	// a twentieth of it, while a ttl of seconds would be renewed about as soon as it is issued.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10m')",message="ttl must be at least 10m: Vault backdates notBefore by 30s, and a shorter certificate would be renewed almost as soon as it is issued"
	TTL string `json:"ttl,omitempty"`

	// renewBefore is how long before expiry the certificate is renewed. Defaults to a third
	// of the lifetime. At most 90% of ttl, so a certificate is used for at least a tenth of
	// its lifetime (a minute at the 10m ttl floor) before it is renewed.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RenewBefore string `json:"renewBefore,omitempty"`

	// renewBeforePercentage renews when this percentage of the lifetime remains (instead of
	// renewBefore): 1 to 90, so a certificate is used for at least a tenth of its lifetime
	// before it is renewed.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=90
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// privateKey describes the key the cert-operator generates; it never leaves the cluster.
	// +optional
	// +kubebuilder:default={}
	PrivateKey PrivateKeySpec `json:"privateKey,omitempty"`

	// secretTemplate holds labels and annotations copied onto the Secret, validated as the
	// API server validates a Secret's own (so a bad one is refused here, not after Vault has
	// signed). Keys under clusterpki.dev/ are refused: the cert-operator sets those itself.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// revocationPolicy says when certificates are revoked in Vault: None (default), OnDelete,
	// OnReissue or Always. Revocation at deletion is retried for the cert-operator's
	// --finalizer-timeout (5m by default) after the deletion; then, or at once when the
	// annotation clusterpki.dev/skip-revocation is "true", the Certificate goes without it and a
	// Warning event names the certificate left unrevoked.
	// +optional
	// +kubebuilder:default=None
	RevocationPolicy RevocationPolicy `json:"revocationPolicy,omitempty"`
}

// CARef refers to a CertificateAuthority in the same namespace.
type CARef struct {
	// name of the CertificateAuthority.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// PrivateKeySpec describes a private key.
// +kubebuilder:validation:XValidation:rule="!has(self.size) || (self.algorithm == 'RSA' && self.size in [2048, 3072, 4096]) || (self.algorithm == 'ECDSA' && self.size in [256, 384])",message="size must be 2048, 3072 or 4096 for RSA, 256 or 384 for ECDSA, and unset for Ed25519",fieldPath=".size"
type PrivateKeySpec struct {
	// algorithm of the key: ECDSA (default), RSA or Ed25519.
	// +optional
	// +kubebuilder:default=ECDSA
	Algorithm KeyAlgorithm `json:"algorithm,omitempty"`

	// size of the key: 256 (default) or 384 for ECDSA; 2048 (default), 3072 or 4096 for RSA;
	// unset for Ed25519.
	// +optional
	Size *int32 `json:"size,omitempty"`
}

// SecretTemplate holds metadata copied onto the Secret.
type SecretTemplate struct {
	// labels added to the Secret: at most 64; keys are qualified names (an optional DNS
	// subdomain prefix and "/", then at most 63 alphanumerics, "-", "_" or "."), values at
	// most 63 such characters. Keys under clusterpki.dev/ and app.kubernetes.io/managed-by
	// are refused: the cert-operator sets those itself.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",messageExpression="self.filter(k, format.qualifiedName().validate(k).hasValue()).map(k, 'label key \"' + k + '\" is not a qualified name: ' + format.qualifiedName().validate(k).value()[0])[0]"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.labelValue().validate(self[k]).hasValue())",messageExpression="self.filter(k, format.labelValue().validate(self[k]).hasValue()).map(k, 'the value of label \"' + k + '\" is not a label value: ' + format.labelValue().validate(self[k]).value()[0])[0]"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('clusterpki.dev/') && k != 'app.kubernetes.io/managed-by')",messageExpression="'label key \"' + self.filter(k, k.startsWith('clusterpki.dev/') || k == 'app.kubernetes.io/managed-by')[0] + '\" is set by the cert-operator and cannot be templated (keys under clusterpki.dev/ and app.kubernetes.io/managed-by)'"
	Labels map[string]SecretLabelValue `json:"labels,omitempty"`

	// annotations added to the Secret: at most 64; keys are qualified names (as for labels,
	// upper case allowed in the prefix), and keys plus values at most 128 KiB in all, half of
	// the API server's limit on a Secret's annotations, which also holds the cert-operator's.
	// Keys under clusterpki.dev/ are refused: the cert-operator sets those itself.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k.lowerAscii()).hasValue())",messageExpression="self.filter(k, format.qualifiedName().validate(k.lowerAscii()).hasValue()).map(k, 'annotation key \"' + k + '\" is not a qualified name: ' + format.qualifiedName().validate(k.lowerAscii()).value()[0])[0]"
	// +kubebuilder:validation:XValidation:rule="self.map(k, size(bytes(k)) + size(bytes(self[k]))).sum() <= 131072",message="annotations may hold at most 128 KiB (131072 bytes) of keys and values in all"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.lowerAscii().startsWith('clusterpki.dev/'))",messageExpression="'annotation key \"' + self.filter(k, k.lowerAscii().startsWith('clusterpki.dev/'))[0] + '\" is set by the cert-operator and cannot be templated (keys under clusterpki.dev/)'"
	Annotations map[string]SecretAnnotationValue `json:"annotations,omitempty"`
}

// The values of secretTemplate's labels (at most 63 characters) and annotations (at most
// 128 KiB, as all of them together): aliases, so code sees plain strings, whose maxLength lets
// the API server bound the cost of the CEL rules over them. Declared in a group so that this
// comment stays out of the field docs that kubectl explain shows.
type (
	// +kubebuilder:validation:MaxLength=63
	SecretLabelValue = string
	// +kubebuilder:validation:MaxLength=131072
	SecretAnnotationValue = string
)

// CertificateStatus reports the certificate currently stored in the Secret.
type CertificateStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (with a reason when False) and Issuing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// notBefore is the start of the current certificate's validity.
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`

	// notAfter is the end of the current certificate's validity.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`

	// renewalTime is when the cert-operator will renew the certificate: the time renewBefore
	// (or renewBeforePercentage, or a third of the lifetime) asks for, but never sooner than
	// one minute after lastIssuanceTime.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`

	// lastIssuanceTime is when Vault last signed a certificate for this Certificate (rounded up
	// to the second), whether or not it reached the Secret. A Certificate is re-issued at most
	// once a minute after it: renewal, a changed CA root, or a damaged or deleted Secret all wait
	// for that floor; only a change of the spec or of the clusterpki.dev/renew annotation
	// re-issues sooner. The floor keeps any spec from making the operator sign in a loop.
	// +optional
	LastIssuanceTime *metav1.Time `json:"lastIssuanceTime,omitempty"`

	// serialNumber of the current certificate, colon-separated hex.
	// +optional
	SerialNumber string `json:"serialNumber,omitempty"`

	// failedIssuanceAttempts counts issuance failures since the last success.
	// +optional
	FailedIssuanceAttempts int32 `json:"failedIssuanceAttempts,omitempty"`

	// lastFailureTime is when issuance last failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// rootFingerprintSHA256 is the SHA-256 fingerprint of the CA root the current certificate
	// was issued under. During a root rotation the ca-operator counts a Certificate as moved
	// when it is the new root's.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RootFingerprintSHA256 string `json:"rootFingerprintSHA256,omitempty"`

	// trustedRootsSHA256 are the SHA-256 fingerprints of the roots in the Secret's ca.crt, sorted.
	// During a root rotation the ca-operator counts a Certificate as trusting when they are the
	// CA's trust bundle.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:MaxLength=64
	TrustedRootsSHA256 []string `json:"trustedRootsSHA256,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// CertificateList is a list of Certificate.
type CertificateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Certificates.
	Items []Certificate `json:"items"`
}
