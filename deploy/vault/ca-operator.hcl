# Vault policy of the ca-operator: it manages the PKI mounts below clusterpki's prefix and
# everything inside them that running a CA needs, and nothing else. It cannot reach a mount
# outside the prefix, and it cannot export or import key material, sign without a role's
# rules, or issue leaf certificates, even inside its own mounts.
#
# Layout (pkg/pkipath): <prefix>/<namespace>/<clusterID>/root and .../issuing, prefix
# "clusterpki" (the operators' --mount-prefix). Change the prefix here, in cert-operator.hcl
# and in both operators' --mount-prefix together.
#
# Precedence: Vault applies the most specific matching path. Every deny below names a full
# path (no trailing "*"), so it outranks the "clusterpki/*" grant. "+" is one path segment:
# "clusterpki/+/+/+/" is the inside of any of the mounts (namespace, clusterID, root|issuing).

# Enable, read, tune and disable mounts below the prefix — PKI engines only.
path "sys/mounts/clusterpki/*" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "type" = ["pki"]
    "*"    = []
  }
}

# Inside those mounts: generate the root and issuing CAs inside Vault, sign the issuing CA
# with the root, manage issuers, roles and the URL, CRL and auto-tidy configuration.
path "clusterpki/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# --- Endpoints that return a private key (Vault v1.21 PKI engine) ----------------------------
# Generate a root and return its key.
path "clusterpki/+/+/+/root/generate/exported" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuers/generate/root/exported" { capabilities = ["deny"] }
# Rotate the root and return the new key.
path "clusterpki/+/+/+/root/rotate/exported" { capabilities = ["deny"] }
# Generate an intermediate CSR and return its key.
path "clusterpki/+/+/+/intermediate/generate/exported" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuers/generate/intermediate/exported" { capabilities = ["deny"] }
# Generate a bare key and return it.
path "clusterpki/+/+/+/keys/generate/exported" { capabilities = ["deny"] }
# Issue a leaf whose key Vault makes and returns (the ca-operator issues no leaves at all).
path "clusterpki/+/+/+/issue/+" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/issue/+" { capabilities = ["deny"] }

# --- Endpoints that import key material --------------------------------------------------------
# A key, or a bundle with a key and certificates; config/ca is the legacy bundle import.
path "clusterpki/+/+/+/keys/import" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuers/import/bundle" { capabilities = ["deny"] }
path "clusterpki/+/+/+/config/ca" { capabilities = ["deny"] }
# (intermediate/set-signed and issuers/import/cert accept certificates only; the operator
# installs the signed issuing CA with set-signed.)

# --- Endpoints that sign without a role's rules, or sign what the operator never signs -------
path "clusterpki/+/+/+/sign-verbatim" { capabilities = ["deny"] }
path "clusterpki/+/+/+/sign-verbatim/+" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/sign-verbatim" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/sign-verbatim/+" { capabilities = ["deny"] }
path "clusterpki/+/+/+/root/sign-self-issued" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/sign-self-issued" { capabilities = ["deny"] }
# The operator signs issuing CAs with root/sign-intermediate only; the per-issuer twin is closed.
path "clusterpki/+/+/+/issuer/+/sign-intermediate" { capabilities = ["deny"] }
# The operator retires an issuer by deleting it, never by revoking it: revoking the default root
# would stop the tenant's issuance in one call. (DELETE <mount>/root, which empties a mount of its
# issuers and keys, needs sudo, which this policy never grants.)
path "clusterpki/+/+/+/issuer/+/revoke" { capabilities = ["deny"] }
# Leaves are signed by the cert-operator, never by the ca-operator.
path "clusterpki/+/+/+/sign/+" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/sign/+" { capabilities = ["deny"] }
# Arbitrary CRLs signed with a CA key.
path "clusterpki/+/+/+/issuer/+/sign-revocation-list" { capabilities = ["deny"] }
path "clusterpki/+/+/+/issuer/+/resign-crls" { capabilities = ["deny"] }
# ACME issues without authentication once enabled (its default directory policy is
# sign-verbatim); keep it off.
path "clusterpki/+/+/+/config/acme" { capabilities = ["deny"] }
