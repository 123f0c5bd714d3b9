#!/usr/bin/env bash
# images.sh builds one static, non-root OCI image per operator without a Docker daemon and
# pushes it, tagged with the version, to $REGISTRY. When REGISTRY is unset it starts (or reuses)
# a local registry on loopback, in the background, and pushes there.
#
# Usage: scripts/images.sh                 build and push both images
#        scripts/images.sh stop-registry    stop the local registry
#
# Env:
#   REGISTRY        registry and repository prefix, e.g. ghcr.io/clusterpki (credentials from
#                   ~/.docker/config.json); unset: the local registry, ${LOCAL_REGISTRY_ADDR}/clusterpki
#   LOCAL_REGISTRY_ADDR  where the local registry listens (default 127.0.0.1:5001)
#   VERSION, COMMIT as in the Makefile (default from git); the tag is VERSION
#   GOARCH          architecture of the images (default: this machine's)
#   IMAGE_BIN_DIR   where the static binaries go (default bin/linux-$GOARCH)
#   CA_BUNDLE       CA certificates put into the images (default /etc/ssl/certs/ca-certificates.crt)
#   OPERATORS       which images to build (default "ca-operator cert-operator")
#
# The image layout (also produced by ca-operator/Dockerfile and cert-operator/Dockerfile):
# /usr/local/bin/<operator> (entrypoint), /etc/ssl/certs/ca-certificates.crt, /etc/passwd with
# user nonroot (65532), which the image runs as. The pushed references are printed on stdout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REG_DIR="${REPO_ROOT}/.local/registry"
PIDFILE="${REG_DIR}/pid"
LOCAL_REGISTRY_ADDR="${LOCAL_REGISTRY_ADDR:-127.0.0.1:5001}"
REGISTRY_TOOL="${REG_DIR}/bin/registry"

running() { [[ -f "${PIDFILE}" ]] && kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; }

if [[ "${1:-}" == "stop-registry" ]]; then
  if running; then
    kill "$(cat "${PIDFILE}")"
    log "stopped the local registry"
  fi
  exit 0
fi

VERSION="${VERSION:-$(git -C "${REPO_ROOT}" describe --tags --always --dirty 2>/dev/null || echo dev)}"
COMMIT="${COMMIT:-$(git -C "${REPO_ROOT}" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
GOARCH="${GOARCH:-$(go env GOARCH)}"
BIN_DIR="${IMAGE_BIN_DIR:-${REPO_ROOT}/bin/linux-${GOARCH}}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
LDFLAGS="-s -w -X github.com/clusterpki/clusterpki/pkg/version.Version=${VERSION} -X github.com/clusterpki/clusterpki/pkg/version.Commit=${COMMIT}"
[[ -f "${CA_BUNDLE}" ]] || die "no CA certificates at ${CA_BUNDLE} (set CA_BUNDLE)"

log "building the image tool"
mkdir -p "${REG_DIR}/bin" "${BIN_DIR}"
(cd "${SCRIPTS_DIR}/registry" && GOWORK=off go build -o "${REGISTRY_TOOL}" .)

if [[ -z "${REGISTRY:-}" ]]; then
  if ! running; then
    log "starting a local registry on ${LOCAL_REGISTRY_ADDR} (log ${REG_DIR}/registry.log)"
    rm -f "${PIDFILE}"
    nohup "${REGISTRY_TOOL}" serve -addr "${LOCAL_REGISTRY_ADDR}" -pid-file "${PIDFILE}" \
      >"${REG_DIR}/registry.log" 2>&1 </dev/null &
    for _ in $(seq 50); do
      [[ -f "${PIDFILE}" ]] && break
      kill -0 $! 2>/dev/null || { cat "${REG_DIR}/registry.log" >&2; die "the local registry did not start"; }
      sleep 0.1
    done
    [[ -f "${PIDFILE}" ]] || die "the local registry did not start (log ${REG_DIR}/registry.log)"
  fi
  REGISTRY="${LOCAL_REGISTRY_ADDR}/clusterpki"
  log "local registry running (pid $(cat "${PIDFILE}")); stop it with scripts/images.sh stop-registry"
fi

for op in ${OPERATORS:-ca-operator cert-operator}; do
  log "building ${op} ${VERSION} (linux/${GOARCH}, static)"
  (cd "${REPO_ROOT}/${op}" && CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH}" \
    go build -trimpath -ldflags "${LDFLAGS}" -o "${BIN_DIR}/${op}" .)
  log "pushing ${REGISTRY}/${op}:${VERSION}"
  "${REGISTRY_TOOL}" push -binary "${BIN_DIR}/${op}" -ref "${REGISTRY}/${op}:${VERSION}" \
    -version "${VERSION}" -revision "${COMMIT}" -ca-bundle "${CA_BUNDLE}" -platform "linux/${GOARCH}"
done
