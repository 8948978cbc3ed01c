"""PgBouncer: PostgreSQL's connection pooler. Its config file (with its TLS settings towards its
clients and towards PostgreSQL), its own users and its catalog entry; its lookup account on
PostgreSQL is made by PostgreSQL's account script (services.postgres, the AUTH role).

Its own users are its auth_file, a users file in its own secret (AccountServer.users_file): its
auth_user's password, which it logs in to PostgreSQL with, and each monitoring client's SCRAM
verifier (a flow to its port from a MONITOR client: the pgbouncer-exporter), which may read the
admin console's SHOW commands (stats_users) and nothing else. PgBouncer never holds a client's
password, only the verifier; the file is rendered again on every start by the wrapper."""

from __future__ import annotations

from collections.abc import Sequence

from devstack.accounts import Account, AccountKind
from devstack.credentials import accounts_on, client_accounts
from devstack.model import (
    MIN_UP,
    SECRETS_DIR,
    USERS_FILE_KEY,
    AccountServer,
    ClientRole,
    ConfigContext,
    ConfigFile,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Login,
    Port,
    Service,
    Tier,
    TlsSupport,
    account_user,
)
from devstack.phases import TlsMode
from devstack.services.postgres import (
    PGBOUNCER_AUTH_QUERY,
    POOL_MAX_PER_DATABASE,
    POOL_SIZE,
    POSTGRES,
    scram_salt,
    scram_verifier,
)
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, CIPHERS, KEY_FILE, TLS_DIR

INI_PATH = "/etc/pgbouncer/pgbouncer.ini"
AUTH_FILE = f"{SECRETS_DIR}/{USERS_FILE_KEY}"  # written by the wrapper from its own secret
AUTH_USER = account_user("pgbouncer")  # its account on PostgreSQL (services.postgres, AUTH)
ADMIN_DATABASE = "pgbouncer"  # the admin console's name, where stats_users read SHOW ...


def _auth_file_line(user: str, secret: str) -> str:
    """One auth_file entry: both fields double-quoted, a quote inside doubled (PgBouncer's syntax);
    a control character would end the line, so none is written."""
    if any(ord(c) < 32 or ord(c) == 127 for c in user + secret):
        raise ValueError(f"PgBouncer auth_file: the entry for {user!r} holds a control character")
    return '"{}" "{}"'.format(user.replace('"', '""'), secret.replace('"', '""'))


def users_file(auth_password: str, logins: Sequence[Login]) -> str:
    """The auth_file: the auth_user with its password (PgBouncer logs in to PostgreSQL with it),
    then each monitoring client with the SCRAM-SHA-256 verifier of its password (salted keyed
    with the auth password, so an unchanged account renders the same file). Only monitors may
    have an account here: PgBouncer's other clients are looked up in PostgreSQL (auth_query)."""
    lines = [_auth_file_line(AUTH_USER, auth_password)]
    for client, password in logins:
        if client.role is not ClientRole.MONITOR:
            raise ValueError(f"PgBouncer: {client.client} may not have an account of its own ({client.role})")
        account = Account(client.user, password, kind=AccountKind.MONITOR)
        lines.append(_auth_file_line(client.user, scram_verifier(password, scram_salt(account, auth_password))))
    return "\n".join(lines) + "\n"


def stats_users(service: Service, selected: tuple[Service, ...]) -> tuple[str, ...]:
    """The monitoring clients that run with it: its stats_users."""
    return tuple(a.user for a in accounts_on(service, client_accounts(selected)) if a.role is ClientRole.MONITOR)


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
    service: Service,
    postgres: Service,
    tls_lines: list[str] | None = None,
    pool_lines: list[str] | None = None,
    stats: Sequence[str] = (),
) -> str:
    stats_line = [f"stats_users = {', '.join(stats)}"] if stats else []
    tls = "".join(f"{line}\n" for line in [*stats_line, *(pool_lines or []), *(tls_lines or [])])
    return f"""; PgBouncer looks clients' SCRAM verifiers up in Postgres through its own auth_user.
[databases]
* = host={postgres.name} port={postgres.port("postgres").container}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {service.port("pgbouncer").container}
auth_type = scram-sha-256
auth_file = {AUTH_FILE}
auth_user = {AUTH_USER}
auth_query = {PGBOUNCER_AUTH_QUERY}
auth_dbname = postgres
pool_mode = transaction
max_client_conn = 100
default_pool_size = {POOL_SIZE}
ignore_startup_parameters = extra_float_digits
{tls}"""


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    tls, pool = pgbouncer_ini_lines(context.tls), pgbouncer_pool_lines(context.tuned)
    ini = pgbouncer_ini(service, POSTGRES, tls, pool, stats_users(service, context.selected))
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
    credentials=Credentials(entrypoint=("/entrypoint.sh", "/usr/bin/pgbouncer", INI_PATH), run_as_uid=70),
    # Its auth_file: the auth_user's password (its account on PostgreSQL), then the monitors'.
    serves=AccountServer(ADMIN_DATABASE, port="pgbouncer", users_file=users_file, admin_key="postgres_password"),
    system_ca_bundle=True,
    tls=TlsSupport(owner=70),  # its switches are in pgbouncer.ini
    config_files=_config_files,
)
