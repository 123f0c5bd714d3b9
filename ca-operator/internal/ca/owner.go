package ca

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// ownerTag is the prefix of the description the ca-operator writes on every mount it makes.
// An administrator who moves an existing PKI under the prefix writes the same tag, naming the
// CertificateAuthority that will own it (deploy/vault/README.md).
const ownerTag = "clusterpki:certificateauthority="

// uidTag separates the owner's namespace/name from its UID in a mount description.
const uidTag = " uid="

// ownerDescription is the mount description that records which object owns a mount: its
// namespace, name and UID.
func ownerDescription(namespace, name string, uid types.UID) string {
	return ownerTag + namespace + "/" + name + uidTag + string(uid)
}

// MountOwnership says how a mount's description relates to a CertificateAuthority.
type MountOwnership int

const (
	// OwnedByUs means the mount records this very CertificateAuthority (namespace, name, UID).
	OwnedByUs MountOwnership = iota
	// Retained means the mount records this namespace and name but another UID, or none: it was
	// kept (deletionPolicy Retain) from an earlier object of the same name, or an administrator
	// marked it for this object, and it re-attaches.
	Retained
	// OwnedByOther means the mount records another CertificateAuthority as its owner.
	OwnedByOther
	// NotManaged means the mount was not made by clusterpki nor marked for it.
	NotManaged
)

// mountOwnership classifies a mount description for the CertificateAuthority namespace/name
// with uid, returning the recorded owner ("namespace/name") if any.
func mountOwnership(description, namespace, name string, uid types.UID) (MountOwnership, string) {
	if !strings.HasPrefix(description, ownerTag) {
		return NotManaged, ""
	}
	owner, recordedUID, _ := strings.Cut(strings.TrimPrefix(description, ownerTag), uidTag)
	switch {
	case owner != namespace+"/"+name:
		return OwnedByOther, owner
	case recordedUID != string(uid):
		return Retained, owner
	}
	return OwnedByUs, owner
}
