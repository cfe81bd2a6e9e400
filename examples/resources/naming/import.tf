# Config-driven import (Terraform 1.5+): `terraform plan -generate-config-out=generated.tf`
# writes the resource block for this name.
import {
  to = naming.web
  id = "web-app-prod-vm1"
}
