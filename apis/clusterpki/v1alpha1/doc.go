// Package v1alpha1 holds the clusterpki.dev/v1alpha1 API: CertificateAuthority
// (a per-cluster CA kept in Vault) and Certificate (a key pair issued by that
// CA into a Kubernetes Secret).
//
// +k8s:deepcopy-gen=package
// +groupName=clusterpki.dev
package v1alpha1
