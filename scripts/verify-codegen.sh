#!/usr/bin/env bash
# verify-codegen.sh fails when generated code or CRD manifests are stale:
# it regenerates into the tree and compares with a copy taken before.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${REPO_ROOT}"
snapshot=$(mktemp -d)
trap 'rm -rf "${snapshot}"' EXIT
cp -a apis deploy/crds "${snapshot}/"

"${SCRIPTS_DIR}/update-codegen.sh" >/dev/null 2>&1 || { "${SCRIPTS_DIR}/update-codegen.sh"; die "update-codegen.sh failed"; }

status=0
diff -Nru "${snapshot}/apis" apis || status=1
diff -Nru "${snapshot}/crds" deploy/crds || status=1
if [[ ${status} -ne 0 ]]; then
  # Put the tree back the way it was so verify never changes files.
  rm -rf apis deploy/crds && cp -a "${snapshot}/apis" apis && cp -a "${snapshot}/crds" deploy/crds
  die "generated code is stale: run scripts/update-codegen.sh (or make generate) and commit the result"
fi
log "generated code and CRDs are up to date"
