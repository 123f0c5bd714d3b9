package certificate

// Reasons of the Ready and Issuing conditions, besides the decision chain's (internal/policy),
// which the controller also writes as they are. A blocked Certificate's Warning event carries
// its condition's reason.
const (
	// ReasonIssued: the certificate in the Secret is current (Ready=True).
	ReasonIssued = "Issued"
	// ReasonUpToDate: nothing is being issued (Issuing=False).
	ReasonUpToDate = "UpToDate"
	// ReasonCANotFound: the CertificateAuthority named in caRef does not exist.
	ReasonCANotFound = "CANotFound"
	// ReasonCANotReady: the CertificateAuthority is not Ready, or publishes no root or no valid
	// Vault path yet.
	ReasonCANotReady = "CANotReady"
	// ReasonRoleNotFound: the CertificateAuthority has no provisioned role of that name.
	ReasonRoleNotFound = "RoleNotFound"
	// ReasonInvalidTrustBundle: the CertificateAuthority's status.trustBundle does not parse
	// or holds a certificate that is not one of the roots its status names; nothing is
	// issued or written until the status is right.
	ReasonInvalidTrustBundle = "InvalidTrustBundle"
	// ReasonInvalidSpec: the spec cannot be issued as it is (e.g. its private key settings).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonIssuanceFailed: Vault refused to sign, or answered with another CA than the
	// CertificateAuthority's; also the Warning event's reason. Retried after a backoff that
	// the status's failed attempts and last failure time decide.
	ReasonIssuanceFailed = "IssuanceFailed"
	// ReasonReissueDeferred is the Issuing reason (and the event reason) of a re-issue that
	// waits for the floor between issuances.
	ReasonReissueDeferred = "ReissueDeferred"
)

// Reasons of the events that report issuance and revocation.
const (
	// EventIssued: a Certificate's first certificate was written to its Secret.
	EventIssued = "Issued"
	// EventRenewed: a later certificate replaced the one in the Secret.
	EventRenewed = "Renewed"
	// EventTrustUpdated: the Secret's ca.crt was rewritten with the CA's trust bundle, the
	// certificate staying (a root rotation's Trusting and Retiring phases).
	EventTrustUpdated = "TrustUpdated"
	// EventRevoked: a certificate was revoked in Vault (a replaced one, or at deletion).
	EventRevoked = "Revoked"
	// EventRevocationFailed: Vault did not revoke a certificate (Warning).
	EventRevocationFailed = "RevocationFailed"
	// EventRevocationSkipped: a deletion went ahead unrevoked because the CA or its Vault path
	// is gone, or the skip-revocation annotation asked for it (Warning).
	EventRevocationSkipped = "RevocationSkipped"
	// EventRevocationAbandoned is the Warning of a deletion that went ahead without the
	// revocation its policy asked for, because Vault did not answer within the finalizer
	// timeout.
	EventRevocationAbandoned = "RevocationAbandoned"
)
