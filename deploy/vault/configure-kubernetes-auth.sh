#!/usr/bin/env bash
# configure-kubernetes-auth.sh configures Vault for clusterpki: it enables the Kubernetes auth
# method (if needed), points it at the cluster's API server, writes the two operators' policies
# (ca-operator.hcl, cert-operator.hcl next to this script) and one role per operator, bound to
# its ServiceAccount and to tokens with the audience "vault" (the projected token the
# Deployments mount). Running it again updates everything in place.
#
# It needs only the vault CLI, logged in with a token allowed to manage auth methods and
# policies (VAULT_ADDR and VAULT_TOKEN as usual).
#
# Environment:
#   KUBERNETES_HOST        API server URL as Vault reaches it (required), e.g. https://10.0.0.1:6443
#   KUBERNETES_CA_FILE     PEM CA of the API server (optional when Vault runs in the cluster)
#   TOKEN_REVIEWER_JWT_FILE  file with a token of a ServiceAccount bound to system:auth-delegator,
#                          which Vault uses to call the TokenReview API (optional when Vault runs
#                          in the cluster: it then uses its own pod's token)
#   NAMESPACE              namespace of the operators (default clusterpki-system)
#   AUTH_MOUNT             path of the auth method (default kubernetes; deploy/default's
#                          vault-kubernetes-mount must match)
#   AUDIENCE               audience the operators' tokens must carry (default vault)
#   TOKEN_TTL, TOKEN_MAX_TTL  lifetime of the operators' Vault tokens (default 1h, 24h); the
#                          operators renew them and log in again when they expire
#   VAULT                  the vault binary (default: vault on PATH, else the one
#                          scripts/build-tools.sh builds)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${KUBERNETES_HOST:?set KUBERNETES_HOST to the API server URL as Vault reaches it}"
NAMESPACE="${NAMESPACE:-clusterpki-system}"
AUTH_MOUNT="${AUTH_MOUNT:-kubernetes}"
AUDIENCE="${AUDIENCE:-vault}"
TOKEN_TTL="${TOKEN_TTL:-1h}"
TOKEN_MAX_TTL="${TOKEN_MAX_TTL:-24h}"
if [[ -z "${VAULT:-}" ]]; then
  if command -v vault >/dev/null; then
    VAULT=vault
  else
    VAULT="$(ls -1 "${HOME}"/.cache/clusterpki/bin/vault-v* 2>/dev/null | tail -n 1 || true)"
  fi
fi
[[ -n "${VAULT}" ]] || { echo "configure-kubernetes-auth.sh: no vault CLI (set VAULT or run scripts/build-tools.sh vault)" >&2; exit 1; }

log() { echo "configure-kubernetes-auth.sh: $*" >&2; }

if ! "${VAULT}" auth list -format=json | grep -q "\"${AUTH_MOUNT}/\""; then
  log "enabling the kubernetes auth method at ${AUTH_MOUNT}/"
  "${VAULT}" auth enable -path="${AUTH_MOUNT}" kubernetes >/dev/null
fi

# Values are passed as @file so that no token shows in the process list.
config=(kubernetes_host="${KUBERNETES_HOST}")
[[ -n "${KUBERNETES_CA_FILE:-}" ]] && config+=(kubernetes_ca_cert=@"${KUBERNETES_CA_FILE}")
[[ -n "${TOKEN_REVIEWER_JWT_FILE:-}" ]] && config+=(token_reviewer_jwt=@"${TOKEN_REVIEWER_JWT_FILE}")
log "configuring ${AUTH_MOUNT}/ for ${KUBERNETES_HOST}"
"${VAULT}" write "auth/${AUTH_MOUNT}/config" "${config[@]}" >/dev/null

for op in ca-operator cert-operator; do
  log "writing policy and role clusterpki-${op} (ServiceAccount ${NAMESPACE}/${op}, audience ${AUDIENCE})"
  "${VAULT}" policy write "clusterpki-${op}" "${here}/${op}.hcl" >/dev/null
  "${VAULT}" write "auth/${AUTH_MOUNT}/role/clusterpki-${op}" \
    bound_service_account_names="${op}" \
    bound_service_account_namespaces="${NAMESPACE}" \
    audience="${AUDIENCE}" \
    token_policies="clusterpki-${op}" \
    token_ttl="${TOKEN_TTL}" \
    token_max_ttl="${TOKEN_MAX_TTL}" >/dev/null
done
log "done"
