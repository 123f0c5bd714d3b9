package ca

import (
	"errors"

	"github.com/clusterpki/clusterpki/pkg/vault"
)

// mountConflictError reports a mount (or a ConfigMap) that belongs to someone else.
type mountConflictError struct{ msg string }

func (e *mountConflictError) Error() string { return e.msg }

// migrationRequiredError reports a CA whose root lives at a path the current layout does not
// use: an administrator must move it (deploy/vault/README.md) before the CA is served again.
type migrationRequiredError struct{ msg string }

func (e *migrationRequiredError) Error() string { return e.msg }

// classify maps an error to the Ready condition's reason and whether a retry may fix it. Vault's
// answers are told apart by pkg/vault, the one place that classifies them.
func classify(err error) (reason string, transient bool) {
	var conflict *mountConflictError
	var moved *migrationRequiredError
	switch {
	case errors.As(err, &conflict):
		return ReasonMountConflict, false
	case errors.As(err, &moved):
		return ReasonMigrationRequired, false
	case vault.IsPermissionDenied(err):
		return ReasonPermissionDenied, true
	case vault.IsUnavailable(err):
		return ReasonVaultUnavailable, true
	}
	return ReasonVaultError, true
}
