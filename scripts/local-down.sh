#!/usr/bin/env bash
# local-down.sh stops what scripts/local-up.sh started (SIGTERM, then SIGKILL
# after 60s) and waits for it. Data stay in DIR; remove DIR for a fresh start.
#
# Usage: scripts/local-down.sh [DIR]   (default: .local/env in the repo)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="${1:-${REPO_ROOT}/.local/env}"
PIDFILE="${DIR}/localenv.pid"

if [[ ! -f "${PIDFILE}" ]]; then
  log "not running (no ${PIDFILE})"
  exit 0
fi
pid="$(cat "${PIDFILE}")"
if ! kill -0 "${pid}" 2>/dev/null; then
  log "not running (stale pid ${pid})"
  rm -f "${PIDFILE}" "${DIR}/env"
  exit 0
fi

log "stopping localenv (pid ${pid})"
kill -TERM "${pid}"
for _ in $(seq 1 120); do
  kill -0 "${pid}" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "${pid}" 2>/dev/null; then
  log "still running after 60s, sending SIGKILL (its children die with it)"
  kill -KILL "${pid}" 2>/dev/null || true
fi
rm -f "${PIDFILE}" "${DIR}/env"
log "stopped"
