#!/usr/bin/env bash
# build-tools.sh builds etcd, kube-apiserver and Vault from the Go module proxy
# into ${CLUSTERPKI_BIN}/<name>-<version>, skipping any binary already there.
#
# Usage: scripts/build-tools.sh [etcd|kube-apiserver|vault|controller-gen|promtool ...]
# With no argument it builds etcd, kube-apiserver, Vault and promtool. Each build uses a small wrapper
# module in ${CLUSTERPKI_CACHE}/build/<name>-<version> that requires the
# upstream module; nothing is written into the clone.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "${CLUSTERPKI_BIN}"

# wrapper_build NAME VERSION MODULE MODVERSION PKG LDFLAGS [go.mod extra lines]
wrapper_build() {
  local name=$1 version=$2 module=$3 modversion=$4 pkg=$5 ldflags=$6 extra=${7:-}
  local out="${CLUSTERPKI_BIN}/${name}-${version}"
  if [[ -x "${out}" ]]; then
    log "${name} ${version}: cached at ${out}"
    return 0
  fi
  local dir="${CLUSTERPKI_CACHE}/build/${name}-${version}"
  rm -rf "${dir}" && mkdir -p "${dir}"
  cat > "${dir}/go.mod" <<MOD
module clusterpki.local/build/${name}

go 1.26

require ${module} ${modversion}
${extra}
MOD
  cat > "${dir}/tools.go" <<GO
//go:build tools

package tools

import _ "${pkg}"
GO
  log "${name} ${version}: building from ${module}@${modversion}: ${TYPICAL_BUILD[${name}]:-minutes} on 2 cores, once (cached in ${CLUSTERPKI_BIN} afterwards)"
  local start=$SECONDS
  with_ticker "${name} ${version}" bash -c '
    cd "$1" && { GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true; } &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -tags="$5" -ldflags="-s -w $2" -o "$3.tmp" "$4"' _ "${dir}" "${ldflags}" "${out}" "${pkg}" "${BUILD_TAGS:-}"
  mv "${out}.tmp" "${out}"
  log "${name} ${version}: built in $(duration $((SECONDS - start))) -> ${out}"
}

# TYPICAL_BUILD is how long a cold build took on a 2-core machine, said up front so that a
# first run does not look stuck.
declare -A TYPICAL_BUILD=([etcd]="about 1 minute" [kube-apiserver]="about 9 minutes" [vault]="about 20 minutes" [controller-gen]="about 1 minute" [promtool]="about 4 minutes")

# duration SECONDS prints 75 as 1m15s.
duration() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "${s}"; fi
}

# with_ticker WHAT CMD... runs CMD, logging every ${CLUSTERPKI_PROGRESS_SECONDS:-10} seconds
# that WHAT is still building and for how long, so a long first build never looks stuck.
with_ticker() {
  local what=$1 start=$SECONDS rc=0
  shift
  (
    while sleep "${CLUSTERPKI_PROGRESS_SECONDS:-10}"; do
      log "${what}: still building, $(duration $((SECONDS - start))) elapsed (once: cached afterwards)"
    done
  ) &
  local ticker=$!
  "$@" || rc=$?
  kill "${ticker}" 2>/dev/null || true
  wait "${ticker}" 2>/dev/null || true
  return "${rc}"
}

# staging_replaces prints a replace line for every k8s.io staging module that
# k8s.io/kubernetes lists as v0.0.0, pinned to the matching published v0.x.
staging_replaces() {
  local gomod
  gomod=$(cd "${CLUSTERPKI_CACHE}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local minor="v0.${KUBE_VERSION#v1.}"
  echo "replace ("
  sed -n 's/^\t\(k8s.io\/[a-z0-9-]*\) => \.\/staging.*/\1/p' "${gomod}" | while read -r m; do
    echo "	${m} => ${m} ${minor}"
  done
  echo ")"
}

build_etcd() {
  wrapper_build etcd "${ETCD_VERSION}" go.etcd.io/etcd/server/v3 "${ETCD_VERSION}" go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=clusterpki"
}

build_kube_apiserver() {
  local v=${KUBE_VERSION#v} major minor
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  wrapper_build kube-apiserver "${KUBE_VERSION}" k8s.io/kubernetes "${KUBE_VERSION}" k8s.io/kubernetes/cmd/kube-apiserver \
    "-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} -X k8s.io/component-base/version.gitMajor=${major} -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z" \
    "$(staging_replaces)"
}

build_vault() {
  wrapper_build vault "${VAULT_VERSION}" github.com/hashicorp/vault "${VAULT_VERSION}" github.com/hashicorp/vault \
    "-X github.com/hashicorp/vault/version.Version=${VAULT_VERSION#v} -X github.com/hashicorp/vault/version.fullVersion=${VAULT_VERSION#v}"
}

build_controller_gen() {
  wrapper_build controller-gen "${CONTROLLER_TOOLS_VERSION}" sigs.k8s.io/controller-tools "${CONTROLLER_TOOLS_VERSION}" \
    sigs.k8s.io/controller-tools/cmd/controller-gen ""
}

# promtool tests the alerting rules in deploy/monitoring (promtool test rules). remove_all_sd
# leaves out the service discovery plugins, which promtool's rule tests never use.
build_promtool() {
  BUILD_TAGS=remove_all_sd wrapper_build promtool "${PROMETHEUS_VERSION}" github.com/prometheus/prometheus "${PROMETHEUS_VERSION}" \
    github.com/prometheus/prometheus/cmd/promtool "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}"
}

mkdir -p "${CLUSTERPKI_CACHE}"
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(etcd kube-apiserver vault promtool)
for t in "${targets[@]}"; do
  case "$t" in
    etcd) build_etcd ;;
    kube-apiserver) build_kube_apiserver ;;
    vault) build_vault ;;
    controller-gen) build_controller_gen ;;
    promtool) build_promtool ;;
    *) die "unknown tool $t" ;;
  esac
done
