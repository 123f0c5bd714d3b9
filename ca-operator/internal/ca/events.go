package ca

import (
	"errors"
	"net"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterpki/clusterpki/pkg/metrics"
)

// Event and condition reasons. They are constants so users and alerts can match on them.
const (
	ReasonProvisioned      = "Provisioned"
	ReasonInvalidSpec      = "InvalidSpec"
	ReasonMountConflict    = "MountConflict"
	ReasonMountReattached  = "MountReattached"
	ReasonMigrationNeeded  = "MigrationRequired"
	ReasonMountsDeleted    = "MountsDeleted"
	ReasonRootGenerated    = "RootGenerated"
	ReasonRootReplaced     = "RootReplaced"
	ReasonRootExpiring     = "RootExpiring"
	ReasonIssuerCreated    = "IssuerCreated"
	ReasonIssuerRotated    = "IssuerRotated"
	ReasonIssuerRetired    = "IssuerRetired"
	ReasonRoleUpdated      = "RoleUpdated"
	ReasonRoleDeleted      = "RoleDeleted"
	ReasonVaultUnavailable = "VaultUnavailable"
	ReasonPermissionDenied = "PermissionDenied"
	ReasonVaultError       = "VaultError"
)

// apiWrites counts the writes the ca-operator makes to the API server, by kind; with no
// change anywhere it stays flat (the benchmark's zero-churn check reads it).
var apiWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "clusterpki_ca_operator_api_writes_total",
	Help: "Writes the ca-operator made to the Kubernetes API, by kind (status, configmap, finalizer).",
}, []string{"kind"})

func init() {
	metrics.Registry.MustRegister(apiWrites)
}

// classify maps an error to the Ready condition's reason and whether a retry may fix it.
func classify(err error) (reason string, transient bool) {
	var conflict *mountConflictError
	if errors.As(err, &conflict) {
		return ReasonMountConflict, false
	}
	var moved *migrationRequiredError
	if errors.As(err, &moved) {
		return ReasonMigrationNeeded, false
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == 403:
			return ReasonPermissionDenied, true
		case re.StatusCode >= 500:
			return ReasonVaultUnavailable, true
		}
		return ReasonVaultError, true
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return ReasonVaultUnavailable, true
	}
	return ReasonVaultError, true
}
