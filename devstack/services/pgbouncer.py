"""PgBouncer: PostgreSQL's connection pooler. Its config file (with its TLS settings towards its
clients and towards PostgreSQL) and its catalog entry; its lookup account on PostgreSQL is made
by PostgreSQL's account script (services.postgres, the AUTH role)."""

from __future__ import annotations

from devstack.model import (
    MIN_UP,
    SECRETS_DIR,
    ClientRole,
    ConfigContext,
    ConfigFile,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Port,
    Service,
    Template,
    Tier,
    TlsSupport,
    ValueSyntax,
    account_user,
)
from devstack.phases import TlsMode
from devstack.services.postgres import (
    PGBOUNCER_AUTH_QUERY,
    POOL_MAX_PER_DATABASE,
    POOL_SIZE,
    POSTGRES,
)
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, CIPHERS, KEY_FILE, TLS_DIR

INI_PATH = "/etc/pgbouncer/pgbouncer.ini"


def pgbouncer_ini_lines(mode: TlsMode, tls_dir: str = TLS_DIR) -> list[str]:
    """pgbouncer.ini lines for the `[pgbouncer]` section: TLS towards its clients and towards
    PostgreSQL. Required: clients must use TLS, and PostgreSQL's certificate is verified against
    the CA and the host name of the `[databases]` entries."""
    if mode is TlsMode.OFF:
        return []
    required = mode is TlsMode.REQUIRED
    return [
        f"client_tls_sslmode = {'require' if required else 'allow'}",
        f"client_tls_cert_file = {tls_dir}/{CERT_FILE}",
        f"client_tls_key_file = {tls_dir}/{KEY_FILE}",
        f"client_tls_ca_file = {tls_dir}/{CA_FILE}",
        "client_tls_protocols = tlsv1.2,tlsv1.3",
        f"client_tls_ciphers = {CIPHERS}",
        f"server_tls_sslmode = {'verify-full' if required else 'prefer'}",
        f"server_tls_ca_file = {tls_dir}/{CA_FILE}",
        "server_tls_protocols = tlsv1.2,tlsv1.3",
        f"server_tls_ciphers = {CIPHERS}",
    ]


def pgbouncer_pool_lines(tuned: bool) -> list[str]:
    """Tuned: server connections bounded per database, in step with PostgreSQL's
    max_connections (services.postgres counts them); else the image's defaults."""
    if not tuned:
        return []
    return [f"max_db_connections = {POOL_MAX_PER_DATABASE}", "reserve_pool_size = 0", "server_idle_timeout = 300"]


def pgbouncer_ini(
    service: Service, postgres: Service, tls_lines: list[str] | None = None, pool_lines: list[str] | None = None
) -> str:
    tls = "".join(f"{line}\n" for line in [*(pool_lines or []), *(tls_lines or [])])
    return f"""; PgBouncer looks clients' SCRAM verifiers up in Postgres through its own auth_user.
[databases]
* = host={postgres.name} port={postgres.port("postgres").container}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {service.port("pgbouncer").container}
auth_type = scram-sha-256
auth_file = {SECRETS_DIR}/userlist.txt
auth_user = {account_user(service.name)}
auth_query = {PGBOUNCER_AUTH_QUERY}
auth_dbname = postgres
pool_mode = transaction
max_client_conn = 100
default_pool_size = {POOL_SIZE}
ignore_startup_parameters = extra_float_digits
{tls}"""


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    ini = pgbouncer_ini(service, POSTGRES, pgbouncer_ini_lines(context.tls), pgbouncer_pool_lines(context.tuned))
    return (ConfigFile(INI_PATH, ini),)


PGBOUNCER = Service(
    name="pgbouncer",
    image="edoburu/pgbouncer",
    tag="v1.25.1-p0",
    tier=Tier.DATA,
    host_id=11,
    ports=(Port("pgbouncer", 5432, 6432),),
    healthcheck=Healthcheck(("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"), interval="15s"),
    limits=Limits(0.5, 64),
    profiles=MIN_UP,
    # edoburu/pgbouncer: USER postgres, Alpine's uid and gid 70.
    hardening=Hardening(user="70:70"),
    depends_on=("vault", POSTGRES.name),
    flows=(VAULT_FLOW, Flow(POSTGRES.name, "postgres")),
    client_role=ClientRole.AUTH,
    # pgbouncer.ini is uploaded (no secret in it); the image's entrypoint leaves an existing one alone.
    credentials=Credentials(
        entrypoint=("/entrypoint.sh", "/usr/bin/pgbouncer", INI_PATH),
        templates=(
            Template(
                "userlist.txt",
                f"{SECRETS_DIR}/userlist.txt",
                '"pgbouncer" "{{postgres_password}}"\n',
                ValueSyntax.DOUBLED,
            ),
        ),
        run_as_uid=70,
    ),
    system_ca_bundle=True,
    tls=TlsSupport(owner=70),  # its switches are in pgbouncer.ini
    config_files=_config_files,
)
