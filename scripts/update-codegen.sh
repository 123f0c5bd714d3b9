#!/usr/bin/env bash
# update-codegen.sh regenerates everything derived from apis/clusterpki/v1alpha1:
# deepcopy and register code, the clientset (with apply configurations),
# listers and informers (k8s.io/code-generator), and the CRD manifests in
# deploy/crds (controller-gen). Generated files are never edited by hand.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${REPO_ROOT}"
export GOBIN="${CLUSTERPKI_CACHE}/codegen-${CODEGEN_VERSION}"
mkdir -p "${GOBIN}"

CODEGEN_DIR=$(cd apis && GOFLAGS=-mod=mod go mod download -json "k8s.io/code-generator@${CODEGEN_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -n "${CODEGEN_DIR}" ]] || die "could not download k8s.io/code-generator@${CODEGEN_VERSION}"
# shellcheck source=/dev/null
source "${CODEGEN_DIR}/kube_codegen.sh"

BOILERPLATE="${REPO_ROOT}/hack/boilerplate.go.txt"
APIS_PKG=github.com/clusterpki/clusterpki/apis

kube::codegen::gen_helpers --boilerplate "${BOILERPLATE}" "${REPO_ROOT}/apis"
kube::codegen::gen_register --boilerplate "${BOILERPLATE}" "${REPO_ROOT}/apis"
kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "${REPO_ROOT}/apis/generated" \
  --output-pkg "${APIS_PKG}/generated" \
  --boilerplate "${BOILERPLATE}" \
  "${REPO_ROOT}/apis"

"${SCRIPTS_DIR}/build-tools.sh" controller-gen
CONTROLLER_GEN="${CLUSTERPKI_BIN}/controller-gen-${CONTROLLER_TOOLS_VERSION}"
rm -f deploy/crds/clusterpki.dev_*.yaml
(cd apis && "${CONTROLLER_GEN}" crd:crdVersions=v1 paths=./clusterpki/... output:crd:dir="${REPO_ROOT}/deploy/crds")
log "code and CRDs regenerated"
