# provisioner: the identity the Vault provider is to log in with at strict (phase 4), instead of
# the root token. Exactly the calls the program makes for what it manages: its policies, its
# AppRoles and their secret_ids, the KV mount and its paths, the approle auth method and the audit
# device (tests/test_provisioner.py derives them from the plan: a path more or less fails). Its
# own login lives elsewhere (auth/approle-provisioner), which this policy does not reach: it
# cannot mint itself credentials, write its own policy, or touch sys/ beyond these paths. Whoever
# may write the services' policies can still grant them more: its secret_id is as sensitive as
# the recovery file. See docs/vault.md, "Retiring the root token".

path "auth/approle/role/api-first" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/api-first/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/api-first/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/api-first/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/api-first/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/forgejo" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/forgejo/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/forgejo/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/forgejo/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/forgejo/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/golang-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/golang-api/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/golang-api/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/golang-api/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/golang-api/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/grafana" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/grafana/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/grafana/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/grafana/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/grafana/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/management" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/management/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/management/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/management/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/management/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/mongodb" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/mongodb/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/mongodb/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/mongodb/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/mongodb/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/mysql-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/mysql-exporter/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/mysql-exporter/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql-exporter/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql-exporter/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/mysql/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/mysql/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/nodejs-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/nodejs-api/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/nodejs-api/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/nodejs-api/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/nodejs-api/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/pgbouncer-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/pgbouncer-exporter/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/pgbouncer-exporter/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer-exporter/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer-exporter/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/pgbouncer/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/pgbouncer/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/postgres-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/postgres-exporter/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/postgres-exporter/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres-exporter/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres-exporter/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/postgres/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/postgres/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/rabbitmq" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/rabbitmq/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/rabbitmq/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/rabbitmq/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/rabbitmq/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-1/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-1/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-1/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-1/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-2/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-2/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-2/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-2/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-3/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-3/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-3/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-3/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-4" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-4/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-4/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-4/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-4/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-5" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-5/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-5/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-5/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-5/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-6" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-6/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-6/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-6/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-6/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-exporter-1/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-exporter-1/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-1/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-1/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-exporter-2/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-exporter-2/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-2/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-2/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/redis-exporter-3/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/redis-exporter-3/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-3/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/redis-exporter-3/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/reference-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/reference-api/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/reference-api/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/reference-api/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/reference-api/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/vector" {
  capabilities = ["create", "delete", "read", "update"]
}

path "auth/approle/role/vector/role-id" {
  capabilities = ["read", "update"]
}

path "auth/approle/role/vector/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/vector/secret-id/destroy" {
  capabilities = ["update"]
}

path "auth/approle/role/vector/secret-id/lookup" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "secret/data/api-first" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/forgejo" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/golang-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/grafana" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/management" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/mongodb" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/mysql" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/mysql-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/nodejs-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/pgbouncer" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/pgbouncer-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/postgres" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/postgres-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/rabbitmq" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-4" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-5" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-6" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-exporter-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-exporter-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/redis-exporter-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/reference-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/data/vector" {
  capabilities = ["create", "delete", "read", "update"]
}

path "secret/metadata/api-first" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/forgejo" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/golang-api" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/grafana" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/management" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/mongodb" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/mysql" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/mysql-exporter" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/nodejs-api" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/pgbouncer" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/pgbouncer-exporter" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/postgres" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/postgres-exporter" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/rabbitmq" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-1" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-2" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-3" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-4" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-5" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-6" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-exporter-1" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-exporter-2" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/redis-exporter-3" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/reference-api" {
  capabilities = ["delete", "read", "update"]
}

path "secret/metadata/vector" {
  capabilities = ["delete", "read", "update"]
}

path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/audit/file" {
  capabilities = ["create", "delete", "read", "sudo", "update"]
}

path "sys/auth" {
  capabilities = ["read"]
}

path "sys/auth/approle" {
  capabilities = ["create", "delete", "read", "sudo", "update"]
}

path "sys/auth/approle/tune" {
  capabilities = ["read", "update"]
}

path "sys/mounts/secret" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/mounts/secret/tune" {
  capabilities = ["read", "update"]
}

path "sys/policies/acl/api-first" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/forgejo" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/golang-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/grafana" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/management" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/mongodb" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/mysql" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/mysql-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/nodejs-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/pgbouncer" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/pgbouncer-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/postgres" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/postgres-exporter" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/rabbitmq" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-4" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-5" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-6" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-exporter-1" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-exporter-2" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/redis-exporter-3" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/reference-api" {
  capabilities = ["create", "delete", "read", "update"]
}

path "sys/policies/acl/vector" {
  capabilities = ["create", "delete", "read", "update"]
}
