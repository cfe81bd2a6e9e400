# A name issued elsewhere is adopted by its hostname.
terraform import naming.web web-app-prod-vm1
