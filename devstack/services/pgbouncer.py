"""PgBouncer: PostgreSQL's connection pooler."""

from __future__ import annotations

from devstack.model import (
    MIN_UP,
    SECRETS_DIR,
    VAULT_FLOW,
    ClientRole,
    Credentials,
    Flow,
    Healthcheck,
    Limits,
    Port,
    Service,
    Template,
    Tier,
)

PGBOUNCER = Service(
    name="pgbouncer",
    image="edoburu/pgbouncer",
    tag="v1.25.1-p0",
    tier=Tier.DATA,
    host_id=11,
    ports=(Port("pgbouncer", 5432, 6432),),
    healthcheck=Healthcheck(("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"), interval="15s"),
    limits=Limits(0.5, 256),
    profiles=MIN_UP,
    depends_on=("vault", "postgres"),
    flows=(VAULT_FLOW, Flow("postgres", "postgres")),
    client_role=ClientRole.AUTH,
    # pgbouncer.ini is uploaded (no secret in it); the image's entrypoint leaves an existing one alone.
    credentials=Credentials(
        entrypoint=("/entrypoint.sh", "/usr/bin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"),
        templates=(Template("userlist.txt", f"{SECRETS_DIR}/userlist.txt", '"pgbouncer" "{{postgres_password}}"\n'),),
        run_as_uid=70,
    ),
    system_ca_bundle=True,
)
