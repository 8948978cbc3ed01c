# Identity "pgbouncer-exporter" (AppRole "pgbouncer-exporter", bound to the container's static address).
# It reads its own credentials and nothing else: no other service's path, nothing under
# sys/ or auth/, and no write, list or delete anywhere.
path "secret/data/pgbouncer-exporter" {
  capabilities = ["read"]
}
