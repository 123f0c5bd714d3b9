# Vault policy of the ca-operator: it manages the per-cluster PKI mounts and
# everything inside them, and nothing else. The mount prefix is the
# operator's --mount-prefix (default "pki-"); change both together.

# Enable, read, tune and disable the PKI mounts pki-<clusterID>-root and pki-<clusterID>.
path "sys/mounts/pki-*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Inside those mounts: generate the root and issuing CAs, sign the issuing CA,
# manage issuers, roles and the URL, CRL and auto-tidy configuration.
path "pki-*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
