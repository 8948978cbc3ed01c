#!/bin/sh
# Creates Forgejo's admin account once, from the files the entrypoint wrapper wrote.
# Runs inside dev-forgejo (`docker exec -i dev-forgejo sh -s`); idempotent.
set -eu
secrets=${DEVSTACK_SECRETS_DIR:-/run/devstack}
log() { echo "forgejo-admin: $*" >&2; }

for key in admin_user admin_email admin_password; do
    [ -s "$secrets/$key" ] || { log "missing $secrets/$key (did the wrapper run?)"; exit 2; }
done
user=$(cat "$secrets/admin_user")
email=$(cat "$secrets/admin_email")

as_git() { su-exec git "$@"; }

waited=0
until as_git forgejo admin user list >/dev/null 2>&1; do
    waited=$((waited + 1))
    [ "$waited" -lt 120 ] || { log "forgejo's database did not become ready"; exit 1; }
    sleep 1
done

if as_git forgejo admin user list --admin | awk 'NR > 1 { print $2 }' | grep -qx "$user"; then
    log "admin $user already exists"
    exit 0
fi
# The CLI has no password-file option: the password is an argument of this one short-lived
# process inside the container, read from the wrapper's file, never from the host.
as_git forgejo admin user create --admin --username "$user" --email "$email" \
    --password "$(cat "$secrets/admin_password")" --must-change-password=false >/dev/null
log "created admin $user"
