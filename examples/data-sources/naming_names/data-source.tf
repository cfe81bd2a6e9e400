# Every issued name of one application carrying a tag.
data "naming_names" "gold" {
  application = "web"
  status      = "issued"
  tags = {
    tier = "gold"
  }
}

output "gold_hostnames" {
  value = [for name in data.naming_names.gold.names : name.hostname]
}
