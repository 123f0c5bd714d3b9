# Vault policy of the cert-operator: sign CSRs with a role, and revoke certificates, on the
# issuing mounts clusterpki makes, and nothing else. It cannot mount, tune or configure
# anything, generate, import or read a CA, touch a role, use a root mount, or call sys/.
# Its token's own lookup and renewal come from Vault's default policy.
#
# Layout (pkg/pkipath): <prefix>/<namespace>/<clusterID>/root and .../issuing, prefix
# "clusterpki" (the operators' --mount-prefix). "+" stands for exactly one path segment, so
# these paths match only the issuing mount of some CA below the prefix. Change the prefix here
# and in both operators' --mount-prefix together.

# Sign a CSR with a role of an issuing mount (the role decides names, usages and lifetime).
path "clusterpki/+/+/issuing/sign/+" {
  capabilities = ["update"]
}

# Revoke a certificate of an issuing mount, by presenting it or by serial.
path "clusterpki/+/+/issuing/revoke" {
  capabilities = ["update"]
}
