terraform {
  required_providers {
    naming = {
      source  = "local/terraform-providers/naming"
      version = "~> 0.1"
    }
  }
}

# Every setting is optional: the endpoint defaults to $HOSTNAMING_URL (else
# http://127.0.0.1:3000) and the token to $HOSTNAMING_TOKEN.
provider "naming" {
  endpoint                = "http://127.0.0.1:3000"
  request_timeout_seconds = 30
  retry_timeout_seconds   = 60
}
