# A hostname from the `hashicorp/http` data source. Data sources are read on every plan;
# the Idempotency-Key makes every read after the first replay the same name.
terraform {
  required_providers {
    http = {
      source  = "hashicorp/http"
      version = "~> 3.4"
    }
  }
}

data "http" "hostname" {
  url             = local.request.url
  method          = local.request.method
  request_headers = local.request.headers
  request_body    = local.request.body

  # Safe to retry: the key makes a retry return the name the first attempt allocated.
  retry {
    attempts = 3
  }

  lifecycle {
    postcondition {
      condition     = self.status_code == 200
      error_message = "hostnaming answered ${self.status_code}: ${self.response_body}"
    }
  }
}

output "hostname" {
  description = "The hostname for var.idempotency_key."
  value       = jsondecode(data.http.hostname.response_body).hostname
}
