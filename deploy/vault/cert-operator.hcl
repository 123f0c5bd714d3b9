# Vault policy of the cert-operator: sign CSRs with a role, and revoke certificates. Nothing
# else: it cannot mount, tune or configure anything, generate, import or read a CA, or touch a
# role. Its token's own lookup and renewal come from Vault's default policy.
#
# The PKI mounts are pki-<clusterID> (issuing, holds the roles) and pki-<clusterID>-root (root,
# no roles). Vault's policy globs cannot say "pki-<anything>": "*" is only a trailing prefix
# glob, and "+" stands for a whole path segment. So the mount segment is "+": <mount>/sign/<role>
# and <mount>/revoke of any mount. On a root mount these grant nothing (it has no roles; its
# sign-intermediate and sign-self-issued endpoints are other paths and stay denied). Do not mount
# other engines with sign/ or revoke endpoints (e.g. SSH) in the same Vault namespace as this policy.

path "+/sign/+" {
  capabilities = ["update"]
}

path "+/revoke" {
  capabilities = ["update"]
}
