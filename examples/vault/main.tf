# The Vault (or OpenBao) side of hostnaming as code, instead of `hostnaming bootstrap`:
# the KV v2 mount with check-and-set required, and the service's least-privilege policy.
# Apply it with an administrator's token (VAULT_ADDR, VAULT_TOKEN); give the service a
# token, or an AppRole, holding only the policy.
terraform {
  required_providers {
    vault = {
      source  = "hashicorp/vault"
      version = "~> 4.0"
    }
  }
}

provider "vault" {}

resource "vault_mount" "hostnaming" {
  path        = local.mount.path
  type        = local.mount.type
  options     = local.mount.options
  description = local.mount.description
}

resource "vault_kv_secret_backend_v2" "hostnaming" {
  mount        = vault_mount.hostnaming.path
  cas_required = local.kv_config.cas_required
}

resource "vault_policy" "hostnaming_service" {
  name   = local.service_policy_name
  policy = local.service_policy
}

output "service_policy" {
  description = "The policy to give the service's token."
  value       = vault_policy.hostnaming_service.name
}
