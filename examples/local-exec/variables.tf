# Where the service is and what the name is made of. examples/http-data-source's
# variables.tf is a link to this file: both examples take the same inputs.
variable "endpoint" {
  description = "Base URL of the hostnaming service."
  type        = string
  default     = "http://127.0.0.1:3000"
}

variable "application" {
  type    = string
  default = "web"
}

variable "role" {
  type    = string
  default = "app"
}

variable "environment" {
  type    = string
  default = "dev"
}
