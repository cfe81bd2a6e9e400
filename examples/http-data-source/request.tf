# The request, kept apart from main.tf so that it can be evaluated without the http
# provider (the acceptance tests send exactly this, twice). endpoint, application, role
# and environment are declared in variables.tf.
variable "token" {
  description = "Bearer token for the service, if it requires one."
  type        = string
  default     = null
  sensitive   = true
}

variable "idempotency_key" {
  description = "Names this hostname: unique across everything that uses the service (e.g. \"team/stack/web-1\"). The same key always returns the same name."
  type        = string
}

locals {
  request = {
    url    = "${trimsuffix(var.endpoint, "/")}/generate-name"
    method = "POST"
    headers = merge(
      {
        "Content-Type" = "application/json"
        # A structured-field string: the quotes are part of the header value.
        "Idempotency-Key" = "\"${var.idempotency_key}\""
      },
      var.token == null ? {} : { Authorization = "Bearer ${var.token}" },
    )
    body = jsonencode({
      application = var.application
      role        = var.role
      environment = var.environment
    })
  }
}
