// Package secret builds the kubernetes.io/tls Secret of a Certificate and reads back what it
// records: which Certificate owns it, and the spec, CA root and renew request that produced it,
// so a restarted operator decides from the Secret alone whether to re-issue.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
	"github.com/clusterpki/clusterpki/apis/contract"
)

// Annotations the cert-operator writes on a Secret to remember how its certificate came about.
const (
	// AnnotationSpecHash is SpecHash of the Certificate spec the certificate was issued for.
	AnnotationSpecHash = "clusterpki.dev/spec-hash"
	// AnnotationRootFingerprint is the SHA-256 fingerprint of the CA root at issuance (its
	// status.root, the root the certificate was issued under).
	AnnotationRootFingerprint = "clusterpki.dev/root-fingerprint-sha256"
	// AnnotationRenewRequest is the Certificate's clusterpki.dev/renew value at issuance.
	AnnotationRenewRequest = "clusterpki.dev/renew-request"
)

// issuanceSpec is the part of a Certificate spec that a certificate depends on; SANs are
// sorted and the key normalised so that equivalent specs hash alike.
type issuanceSpec struct {
	CA         string   `json:"ca"`
	Role       string   `json:"role"`
	CommonName string   `json:"cn,omitempty"`
	DNSNames   []string `json:"dns,omitempty"`
	IPs        []string `json:"ips,omitempty"`
	URIs       []string `json:"uris,omitempty"`
	Key        string   `json:"key"`
	TTL        string   `json:"ttl"`
}

// SpecHash returns a hex SHA-256 of the issuance-relevant part of spec: CA, role, subject, SANs,
// private key (keySpec, already normalised, e.g. "ECDSA-256") and ttl (normalised as a duration).
func SpecHash(spec v1alpha1.CertificateSpec, keySpec string) string {
	ttl := spec.TTL
	if d, err := time.ParseDuration(ttl); err == nil {
		ttl = d.String()
	}
	sorted := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return s
	}
	data, _ := json.Marshal(issuanceSpec{ // marshalling strings cannot fail
		CA:         spec.CARef.Name,
		Role:       spec.Role,
		CommonName: spec.CommonName,
		DNSNames:   sorted(spec.AltNames),
		IPs:        sorted(spec.IPSANs),
		URIs:       sorted(spec.URISANs),
		Key:        keySpec,
		TTL:        ttl,
	})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Owner returns the name of the Certificate that the Secret belongs to, and whether it is a
// Secret the cert-operator manages at all.
func Owner(s *corev1.Secret) (string, bool) {
	if s.Labels[v1alpha1.LabelManagedBy] != contract.ManagedByValue {
		return "", false
	}
	name, ok := s.Labels[v1alpha1.LabelCertificate]
	return name, ok && name != ""
}

// IsOwnedBy reports whether s is the Secret of Certificate cert.
func IsOwnedBy(s *corev1.Secret, cert *v1alpha1.Certificate) bool {
	name, ok := Owner(s)
	return ok && name == cert.Name
}

// Material is the key pair and chain a Secret holds, all PEM.
type Material struct {
	// Certificate is the leaf followed by the issuing CA (and, during a root rotation, the new
	// root's certificate cross-signed by the old root).
	Certificate []byte
	// PrivateKey is the PKCS#8 private key.
	PrivateKey []byte
	// CA is the trust: the CA's trust bundle (the root, or during a root rotation the old and
	// the new root).
	CA []byte
}

// Provenance is what produced the material, recorded in the Secret's annotations.
type Provenance struct {
	SpecHash        string
	RootFingerprint string
	RenewRequest    string
}

// ProvenanceOf reads the Provenance annotations of s.
func ProvenanceOf(s *corev1.Secret) Provenance {
	return Provenance{
		SpecHash:        s.Annotations[AnnotationSpecHash],
		RootFingerprint: s.Annotations[AnnotationRootFingerprint],
		RenewRequest:    s.Annotations[AnnotationRenewRequest],
	}
}

// Build returns the Secret of cert holding material with provenance p, labelled with the
// cluster clusterID and owned by cert.
func Build(cert *v1alpha1.Certificate, clusterID string, material Material, p Provenance) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cert.Namespace,
			Name:      cert.Spec.SecretName,
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       material.Certificate,
			corev1.TLSPrivateKeyKey: material.PrivateKey,
			contract.TrustKey:       material.CA,
		},
	}
	ApplyMetadata(s, cert, clusterID, p)
	return s
}

// ApplyMetadata sets on s the labels, annotations (secretTemplate's, then ours) and owner
// reference that cert's Secret carries, keeping anything else already there; it reports whether
// s changed.
func ApplyMetadata(s *corev1.Secret, cert *v1alpha1.Certificate, clusterID string, p Provenance) bool {
	labels := map[string]string{}
	annotations := map[string]string{}
	if t := cert.Spec.SecretTemplate; t != nil {
		maps.Copy(labels, t.Labels)
		maps.Copy(annotations, t.Annotations)
	}
	labels[v1alpha1.LabelManagedBy] = contract.ManagedByValue
	labels[v1alpha1.LabelCertificate] = cert.Name
	labels[v1alpha1.LabelClusterID] = clusterID
	annotations[AnnotationSpecHash] = p.SpecHash
	annotations[AnnotationRootFingerprint] = p.RootFingerprint
	if p.RenewRequest != "" {
		annotations[AnnotationRenewRequest] = p.RenewRequest
	}

	changed := mergeInto(&s.Labels, labels)
	if mergeInto(&s.Annotations, annotations) {
		changed = true
	}
	if p.RenewRequest == "" {
		if _, ok := s.Annotations[AnnotationRenewRequest]; ok {
			delete(s.Annotations, AnnotationRenewRequest)
			changed = true
		}
	}
	ref := ownerReference(cert)
	if !slices.ContainsFunc(s.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == ref.UID }) {
		s.OwnerReferences = append(s.OwnerReferences, ref)
		changed = true
	}
	return changed
}

// mergeInto sets every key of from in *into, reporting whether anything changed.
func mergeInto(into *map[string]string, from map[string]string) bool {
	changed := false
	for k, v := range from {
		if old, ok := (*into)[k]; ok && old == v {
			continue
		}
		if *into == nil {
			*into = map[string]string{}
		}
		(*into)[k] = v
		changed = true
	}
	return changed
}

// ownerReference returns the controller reference from a Secret to cert.
func ownerReference(cert *v1alpha1.Certificate) metav1.OwnerReference {
	controller := true
	return metav1.OwnerReference{
		APIVersion: v1alpha1.SchemeGroupVersion.String(),
		Kind:       "Certificate",
		Name:       cert.Name,
		UID:        cert.UID,
		Controller: &controller,
	}
}
