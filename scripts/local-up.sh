#!/usr/bin/env bash
# local-up.sh starts the local control plane (etcd, kube-apiserver, Vault) in
# the background, the same one the tests use, and waits until it is ready.
#
# Usage: scripts/local-up.sh [DIR]     (default: .local/env in the repo)
# DIR keeps the data, certificates, logs, kubeconfig and env; etcd and Vault
# data survive scripts/local-down.sh and are reused by the next local-up.sh.
# Env: LOCALENV_TIMEOUT (seconds, default 300), LOCALENV_CRDS (CRD folder,
# default deploy/crds).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${1:-${REPO_ROOT}/.local/env}"
mkdir -p "${DIR}"
DIR="$(cd "${DIR}" && pwd)"
PIDFILE="${DIR}/localenv.pid"
LOGFILE="${DIR}/localenv.log"
TIMEOUT="${LOCALENV_TIMEOUT:-300}"

if [[ -f "${PIDFILE}" ]] && kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
  die "already running (pid $(cat "${PIDFILE}")); stop it with scripts/local-down.sh ${DIR}"
fi

"${SCRIPTS_DIR}/build-tools.sh" etcd kube-apiserver vault
log "building localenv"
mkdir -p "${DIR}/bin"
(cd "${REPO_ROOT}/test/kit" && go build -o "${DIR}/bin/localenv" ./cmd/localenv)

args=(up --dir "${DIR}")
[[ -n "${LOCALENV_CRDS:-}" ]] && args+=(--crds "${LOCALENV_CRDS}")
rm -f "${DIR}/env"
log "starting localenv (log ${LOGFILE})"
# Own session: a Ctrl-C or hang-up in this terminal does not reach it.
setsid_cmd=()
command -v setsid >/dev/null && setsid_cmd=(setsid)
CLUSTERPKI_REPO_ROOT="${REPO_ROOT}" nohup "${setsid_cmd[@]}" "${DIR}/bin/localenv" "${args[@]}" \
  >"${LOGFILE}" 2>&1 </dev/null &
echo $! >"${PIDFILE}"

start=${SECONDS}
until [[ -f "${DIR}/env" ]]; do
  if ! kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
    tail -n 40 "${LOGFILE}" >&2 || true
    rm -f "${PIDFILE}"
    die "localenv exited before it was ready (log above, full log ${LOGFILE})"
  fi
  if (( SECONDS - start > TIMEOUT )); then
    tail -n 40 "${LOGFILE}" >&2 || true
    die "localenv not ready after ${TIMEOUT}s (log above, full log ${LOGFILE}); stop it with scripts/local-down.sh ${DIR}"
  fi
  sleep 0.5
done

log "ready in $((SECONDS - start))s"
cat <<USAGE
  source ${DIR}/env
  kubectl get ns
  kubectl version
Vault: \$VAULT_ADDR with the root token in \$VAULT_TOKEN. Logs: ${DIR}/*.log
Stop:  scripts/local-down.sh$([[ $# -gt 0 ]] && printf ' %s' "${DIR}")
USAGE
