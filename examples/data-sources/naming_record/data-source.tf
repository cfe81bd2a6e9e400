# Any name's registry record, whoever issued it.
data "naming_record" "web" {
  hostname = "web-app-prod-vm1"
}

output "web_status" {
  value = data.naming_record.web.status
}
