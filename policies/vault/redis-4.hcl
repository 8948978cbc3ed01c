# Identity "redis-4" (AppRole "redis-4", bound to the container's static address).
# It reads its own credentials and nothing else: no other service's path, nothing under
# sys/ or auth/, and no write, list or delete anywhere.
path "secret/data/redis-4" {
  capabilities = ["read"]
}
