# Identity "management": backup and operations tooling, read-only.
# Its own credentials (the backup accounts it will hold) live under secret/management; it reads
# those and nothing else. It cannot read any service's credentials, write anything, or touch
# sys/ or auth/.
path "secret/data/management" {
  capabilities = ["read"]
}

path "secret/data/management/*" {
  capabilities = ["read"]
}
