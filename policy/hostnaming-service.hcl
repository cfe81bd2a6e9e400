# The hostnaming service's own Vault/OpenBao policy: its mount's paths only, and only the
# capabilities it uses. `hostnaming bootstrap` installs it (as `hostnaming-service`, with
# the mount name substituted for `hostnaming`).

# Counters: read, create (cas=0) and advance (cas=version).
path "hostnaming/data/applications/*" {
  capabilities = ["create", "read", "update"]
}

# The name registry: claim (create only, by cas=0), read, release (update).
path "hostnaming/data/names/*" {
  capabilities = ["create", "read", "update"]
}

# Idempotency-key records: create pending, read, complete.
path "hostnaming/data/idempotency/*" {
  capabilities = ["create", "read", "update"]
}

# Listing a tuple's counters for GET /names.
path "hostnaming/metadata/applications/*" {
  capabilities = ["list"]
}

# Searching the whole registry: GET /names without an application, and exports.
path "hostnaming/metadata/names/*" {
  capabilities = ["list"]
}

# /healthz checks that the mount exists and is KV v2.
path "hostnaming/config" {
  capabilities = ["read"]
}
