package ca

// Event and condition reasons of the CertificateAuthority controller, all in one place. They are
// constants so users and alerts can match on them. The Ready=True reason is
// contract.ReasonProvisioned, which the cert-operator reads too.
const (
	// ReasonInvalidSpec is the Ready reason (and Warning) of a spec the controller cannot apply;
	// nothing is retried until the spec changes.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonMountConflict is the Ready reason (and Warning) of a mount, or a ConfigMap, that is
	// not this CertificateAuthority's to use.
	ReasonMountConflict = "MountConflict"
	// ReasonMigrationRequired is the Ready reason (and Warning) of a CA whose root lives at a path
	// the current layout does not use: an administrator moves it.
	ReasonMigrationRequired = "MigrationRequired"
	// ReasonVaultUnavailable is the Ready reason (and Warning) when Vault cannot be reached, is
	// sealed or answers 5xx.
	ReasonVaultUnavailable = "VaultUnavailable"
	// ReasonPermissionDenied is the Ready reason (and Warning) when the operator's Vault policy
	// does not allow a request.
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonVaultError is the Ready reason (and Warning) of any other failure.
	ReasonVaultError = "VaultError"

	// ReasonMountReattached is the event of a mount kept from an earlier object of the same name
	// (or marked by an administrator) that this CertificateAuthority takes over.
	ReasonMountReattached = "MountReattached"
	// ReasonMountsDeleted is the event of deletionPolicy Delete carried out.
	ReasonMountsDeleted = "MountsDeleted"
	// ReasonUnmountAbandoned is the Warning of a CertificateAuthority with deletionPolicy Delete
	// that was let go without its Vault mounts being unmounted, because Vault did not answer
	// within the finalizer timeout.
	ReasonUnmountAbandoned = "UnmountAbandoned"

	// ReasonRootGenerated is the event of a root generated in an existing root mount that had none.
	ReasonRootGenerated = "RootGenerated"
	// ReasonRootReplaced is the Warning of a root that differs from the one status recorded:
	// consumers must trust the new one.
	ReasonRootReplaced = "RootReplaced"
	// ReasonRootValid is the RootExpiring=False reason.
	ReasonRootValid = "RootValid"
	// ReasonRootExpiring is the RootExpiring reason (and Warning) of a root within its expiry
	// warning.
	ReasonRootExpiring = "RootExpiring"
	// ReasonRootTooShort is the RootExpiring reason (and Warning) of a root that has too little
	// life left to give any new issuing CA a life outside its rotation window.
	ReasonRootTooShort = "RootTooShort"

	// ReasonIssuerCreated is the event of an issuing CA made in an existing issuing mount that
	// had none.
	ReasonIssuerCreated = "IssuerCreated"
	// ReasonIssuerRotated is the event of an issuing CA replaced by a new one.
	ReasonIssuerRotated = "IssuerRotated"
	// ReasonIssuerRetired is the event of an expired issuing CA removed from its mount.
	ReasonIssuerRetired = "IssuerRetired"
	// ReasonRotationDeferred is the event of a rotation that waits for RotationFloor.
	ReasonRotationDeferred = "RotationDeferred"

	// ReasonRootRotationStarted is the event of a root rotation started (phase Preparing).
	ReasonRootRotationStarted = "RootRotationStarted"
	// ReasonRootRotationDeferred is the event of a root rotation that is due but waits: for the
	// running one to complete, or for RotationFloor after the last one.
	ReasonRootRotationDeferred = "RootRotationDeferred"
	// ReasonTrustPublished is the event of the trust bundle holding the old and the new root
	// (phase Trusting).
	ReasonTrustPublished = "TrustPublished"
	// ReasonIssuanceMoved is the event of the new root made the root mount's default (phase
	// Moving).
	ReasonIssuanceMoved = "IssuanceMoved"
	// ReasonRootRotationOverlap is the event of every Certificate moved (phase Overlap).
	ReasonRootRotationOverlap = "RootRotationOverlap"
	// ReasonRootRetired is the event of the old root retired (phase Completed).
	ReasonRootRetired = "RootRetired"
	// ReasonRootRotationStalled is the Warning of a root rotation that has not moved for long,
	// naming the Certificates that hold it, or that cannot go on without a person.
	ReasonRootRotationStalled = "RootRotationStalled"

	// ReasonRoleUpdated is the event of a Vault role written because it differed from the spec.
	ReasonRoleUpdated = "RoleUpdated"
	// ReasonRoleDeleted is the event of a Vault role deleted because it left the spec.
	ReasonRoleDeleted = "RoleDeleted"
)
