package secret

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/apis/clusterpki/v1alpha1"
)

func certificate() *v1alpha1.Certificate {
	return &v1alpha1.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "uid-1"},
		Spec: v1alpha1.CertificateSpec{
			CARef: v1alpha1.CARef{Name: "ca"}, Role: "server", SecretName: "web-tls",
			CommonName: "web.example.com", AltNames: []string{"b.example.com", "a.example.com"}, TTL: "720h",
			SecretTemplate: &v1alpha1.SecretTemplate{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}},
		},
	}
}

func TestSpecHash(t *testing.T) {
	base := SpecHash(certificate().Spec, "ECDSA-256")
	tests := map[string]struct {
		change   func(*v1alpha1.CertificateSpec)
		keySpec  string
		wantSame bool
	}{
		"the order of SANs does not matter":         {change: func(s *v1alpha1.CertificateSpec) { s.AltNames = []string{"a.example.com", "b.example.com"} }, wantSame: true},
		"an equivalent ttl does not matter":         {change: func(s *v1alpha1.CertificateSpec) { s.TTL = "43200m" }, wantSame: true},
		"renewBefore is not issuance-relevant":      {change: func(s *v1alpha1.CertificateSpec) { s.RenewBefore = "1h" }, wantSame: true},
		"secretTemplate is not issuance-relevant":   {change: func(s *v1alpha1.CertificateSpec) { s.SecretTemplate = nil }, wantSame: true},
		"revocationPolicy is not issuance-relevant": {change: func(s *v1alpha1.CertificateSpec) { s.RevocationPolicy = v1alpha1.RevocationPolicyAlways }, wantSame: true},
		"a new SAN matters":                         {change: func(s *v1alpha1.CertificateSpec) { s.AltNames = append(s.AltNames, "c.example.com") }},
		"the common name matters":                   {change: func(s *v1alpha1.CertificateSpec) { s.CommonName = "other" }},
		"the CA matters":                            {change: func(s *v1alpha1.CertificateSpec) { s.CARef.Name = "other" }},
		"the role matters":                          {change: func(s *v1alpha1.CertificateSpec) { s.Role = "client" }},
		"the ttl matters":                           {change: func(s *v1alpha1.CertificateSpec) { s.TTL = "24h" }},
		"IP SANs matter":                            {change: func(s *v1alpha1.CertificateSpec) { s.IPSANs = []string{"10.0.0.1"} }},
		"URI SANs matter":                           {change: func(s *v1alpha1.CertificateSpec) { s.URISANs = []string{"spiffe://x/y"} }},
		"the key matters":                           {keySpec: "RSA-2048"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			spec := certificate().Spec
			if tc.change != nil {
				tc.change(&spec)
			}
			keySpec := "ECDSA-256"
			if tc.keySpec != "" {
				keySpec = tc.keySpec
			}
			assert.Equal(t, tc.wantSame, SpecHash(spec, keySpec) == base)
		})
	}
}

func TestBuild(t *testing.T) {
	cert := certificate()
	s := Build(cert, "c1", Material{Certificate: []byte("crt"), PrivateKey: []byte("key"), CA: []byte("ca")},
		Provenance{SpecHash: "h", RootFingerprint: "f", RenewRequest: "r"})

	assert.Equal(t, corev1.SecretTypeTLS, s.Type)
	assert.Equal(t, "web-tls", s.Name)
	assert.Equal(t, "team-a", s.Namespace)
	assert.Equal(t, map[string][]byte{"tls.crt": []byte("crt"), "tls.key": []byte("key"), "ca.crt": []byte("ca")}, s.Data)
	assert.Equal(t, map[string]string{
		"team": "a", "app.kubernetes.io/managed-by": "clusterpki",
		"clusterpki.dev/certificate": "web", "clusterpki.dev/cluster-id": "c1",
	}, s.Labels)
	assert.Equal(t, map[string]string{
		"note": "x", AnnotationSpecHash: "h", AnnotationRootFingerprint: "f", AnnotationRenewRequest: "r",
	}, s.Annotations)
	assert.Len(t, s.OwnerReferences, 1)
	assert.Equal(t, "Certificate", s.OwnerReferences[0].Kind)
	assert.True(t, *s.OwnerReferences[0].Controller)
	assert.Equal(t, Provenance{SpecHash: "h", RootFingerprint: "f", RenewRequest: "r"}, ProvenanceOf(s))
	assert.True(t, IsOwnedBy(s, cert))
}

func TestApplyMetadata(t *testing.T) {
	cert := certificate()
	p := Provenance{SpecHash: "h", RootFingerprint: "f"}
	s := Build(cert, "c1", Material{}, p)
	s.Labels["added-by-someone"] = "kept"

	assert.False(t, ApplyMetadata(s, cert, "c1", p), "applying the same metadata again changes nothing")
	assert.Equal(t, "kept", s.Labels["added-by-someone"])

	cert.Spec.SecretTemplate.Labels["team"] = "b"
	assert.True(t, ApplyMetadata(s, cert, "c1", p), "a changed template label is applied")
	assert.Equal(t, "b", s.Labels["team"])

	s.Annotations[AnnotationRenewRequest] = "old"
	assert.True(t, ApplyMetadata(s, cert, "c1", p), "a renew request no longer current is removed")
	assert.NotContains(t, s.Annotations, AnnotationRenewRequest)
}

func TestOwner(t *testing.T) {
	tests := map[string]struct {
		labels   map[string]string
		wantName string
		wantOurs bool
	}{
		"labelled as ours":               {labels: map[string]string{"app.kubernetes.io/managed-by": "clusterpki", "clusterpki.dev/certificate": "web"}, wantName: "web", wantOurs: true},
		"no labels":                      {},
		"managed by something else":      {labels: map[string]string{"app.kubernetes.io/managed-by": "helm", "clusterpki.dev/certificate": "web"}},
		"ours but naming no certificate": {labels: map[string]string{"app.kubernetes.io/managed-by": "clusterpki"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			name, ours := Owner(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}})
			assert.Equal(t, tc.wantName, name)
			assert.Equal(t, tc.wantOurs, ours)
		})
	}
}
