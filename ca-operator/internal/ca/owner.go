package ca

import (
	"strings"
)

// ownerTag is the prefix of the description the ca-operator writes on every mount it makes.
const ownerTag = "clusterpki:certificateauthority="

// ownerDescription is the mount description that records which object owns a mount.
func ownerDescription(namespace, name string) string {
	return ownerTag + namespace + "/" + name
}

// MountOwnership says how a mount's description relates to a CertificateAuthority.
type MountOwnership int

const (
	// OwnedByUs means the mount records this CertificateAuthority as its owner.
	OwnedByUs MountOwnership = iota
	// OwnedByOther means the mount records another CertificateAuthority as its owner.
	OwnedByOther
	// NotManaged means the mount was not made by clusterpki.
	NotManaged
)

// mountOwnership classifies a mount description, returning the recorded owner if any.
func mountOwnership(description, namespace, name string) (MountOwnership, string) {
	if !strings.HasPrefix(description, ownerTag) {
		return NotManaged, ""
	}
	owner := strings.TrimPrefix(description, ownerTag)
	if owner == namespace+"/"+name {
		return OwnedByUs, owner
	}
	return OwnedByOther, owner
}
