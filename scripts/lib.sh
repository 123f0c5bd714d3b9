#!/usr/bin/env bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
set -euo pipefail
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPTS_DIR}/.." && pwd)"
# shellcheck source=versions.env
source "${SCRIPTS_DIR}/versions.env"
CLUSTERPKI_CACHE="${CLUSTERPKI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clusterpki}"
CLUSTERPKI_BIN="${CLUSTERPKI_BIN:-${CLUSTERPKI_CACHE}/bin}"
export CLUSTERPKI_CACHE CLUSTERPKI_BIN

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
