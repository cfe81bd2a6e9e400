# A configuration as the proof of concept's users wrote it, unchanged: the provider's
# local name and source, resource type `naming`, three inputs, `generated_name` read back.
terraform {
  required_providers {
    naming = {
      source = "local/terraform-providers/naming"
    }
  }
}

# The endpoint comes from HOSTNAMING_URL (default http://127.0.0.1:3000) and the token
# from HOSTNAMING_TOKEN; both can also be set here.
provider "naming" {}

variable "vms" {
  description = "The machines to name, by key."
  type = map(object({
    application = string
    role        = string
    environment = string
  }))
  default = {
    web-1 = { application = "web", role = "app", environment = "prod" }
    web-2 = { application = "web", role = "app", environment = "prod" }
    db-1  = { application = "web", role = "db", environment = "prod" }
  }
}

resource "naming" "vm" {
  for_each = var.vms

  application = each.value.application
  role        = each.value.role
  environment = each.value.environment
}

output "hostnames" {
  description = "Each machine's key and its hostname."
  value       = { for key, name in naming.vm : key => name.generated_name }
}
