# One hostname for one machine: issued on create, released on destroy.
resource "naming" "web" {
  application = "web"
  role        = "app"
  environment = "prod"

  # Optional: the same key gets the same name back if an apply is retried.
  idempotency_key = "team-web/prod/web-1"

  # Optional metadata, changed in place.
  owner       = "team-web"
  description = "Front-end web server"
  tags = {
    cost-center = "42"
  }
}

output "hostname" {
  value = naming.web.generated_name
}
