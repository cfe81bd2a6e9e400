# One hostname with nothing but Terraform and curl: no provider to install. The answer is
# written to hostname.json and read back into the `hostname` output; destroy releases it.
locals {
  answer = "${path.module}/hostname.json"
}

resource "terraform_data" "hostname" {
  # Any change of these allocates a new name (and releases the old one).
  input = {
    endpoint    = var.endpoint
    application = var.application
    role        = var.role
    environment = var.environment
    answer      = local.answer
  }

  provisioner "local-exec" {
    # self.id is new for each instance, so curl's own retries replay the same name rather
    # than allocating another; --fail-with-body makes a refusal fail the apply, showing
    # the service's problem document.
    command = <<-EOT
      curl -sS --fail-with-body --retry 5 --retry-connrefused \
        -X POST "$ENDPOINT/generate-name" \
        -H 'content-type: application/json' \
        -H "Idempotency-Key: \"terraform-data-$ID\"" \
        -d "$BODY" -o "$ANSWER" || { cat "$ANSWER" >&2; rm -f "$ANSWER"; exit 1; }
    EOT
    environment = {
      ENDPOINT = self.input.endpoint
      ID       = self.id
      ANSWER   = self.input.answer
      BODY = jsonencode({
        application = self.input.application
        role        = self.input.role
        environment = self.input.environment
      })
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = <<-EOT
      [ -f "$ANSWER" ] || exit 0
      name=$(sed -n 's/.*"hostname":"\([^"]*\)".*/\1/p' "$ANSWER")
      curl -sS --fail-with-body --retry 5 --retry-connrefused \
        -X DELETE "$ENDPOINT/names/$name" -o /dev/null && rm -f "$ANSWER"
    EOT
    environment = {
      ENDPOINT = self.input.endpoint
      ANSWER   = self.input.answer
    }
  }
}

output "hostname" {
  description = "The allocated hostname."
  # The reference to terraform_data makes the value unknown until it is created, so the
  # file is read after the provisioner wrote it, not while planning.
  value = (terraform_data.hostname.output != null && fileexists(local.answer)
  ? jsondecode(file(local.answer)).hostname : null)
}
