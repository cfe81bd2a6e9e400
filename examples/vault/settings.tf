# What `hostnaming bootstrap` creates, as values. Kept apart from main.tf so that it can
# be evaluated without the vault provider: the acceptance tests compare it with a real
# bootstrap.
variable "mount" {
  description = "The KV v2 mount the service uses (its vault_mount variable)."
  type        = string
  default     = "hostnaming"
}

locals {
  mount = {
    path        = var.mount
    type        = "kv"
    options     = { version = "2" }
    description = "hostnaming: counters and the name registry"
  }

  # Every write to the mount must say which version it expects: that is how counters
  # advance without two instances issuing the same number.
  kv_config = {
    cas_required = true
  }

  service_policy_name = "hostnaming-service"
  # The same substitution as bootstrap's for a mount other than `hostnaming`.
  service_policy = replace(file("${path.module}/hostnaming-service.hcl"), "\"hostnaming/", "\"${var.mount}/")
}
