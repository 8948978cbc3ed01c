"""The PostgreSQL, MySQL and PgBouncer exporters: each logs in to its server with its own read-only
monitoring account (the database's account step creates it: a flow from a MONITOR client to
the database port is all it takes, devstack.credentials), its password handed over as a file
by the entrypoint wrapper, never in the environment or on a command line.

Both images are the Prometheus community's own builds on quay.io/prometheus/busybox, whose
ENTRYPOINT is the exporter and whose USER is nobody (65534). Their metrics listener serves
HTTPS once TLS is required, through the exporter-toolkit --web.config.file Prometheus's own
listener takes; their database connection is verified against the CA from then on too.

Those busybox images have no client that verifies a certificate (no curl, no openssl, no Alpine
ssl_client), so the entrypoint wrapper could not read their secret once containers reach Vault
over HTTPS (phase 1 on). Their credentials say so (UPLOADED_BECAUSE): the platform uploads the
account's user and password (and the filled-in my.cnf) as Pulumi-secret files, 0400 to nobody,
at the paths the wrapper would have written; they run the image's own entrypoint, with no
Vault login at all. The files sit in the container's writable layer, not a tmpfs (Docker
uploads before the tmpfs is mounted): the price of an image that cannot verify Vault.

The PgBouncer exporter reads PgBouncer's admin console (SHOW POOLS and the like) as one of its
stats_users, whose account PgBouncer's own users file holds (devstack.services.pgbouncer). Its
password comes as libpq's password file (PGPASSFILE names it), which lib/pq reads as well.

MongoDB's metrics come from Vector instead (devstack.services.vector): the well-kept exporter
(percona/mongodb_exporter) takes its password only from the environment or a command-line
flag, which no secret here ever is."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    FULL,
    SECRETS_DIR,
    TEMPLATE_DIR,
    ClientRole,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    ServerTls,
    Service,
    Template,
    Tier,
    TlsSupport,
    ValueSyntax,
    account_user,
    http_probe,
    secret_files,
    shell,
)
from devstack.phases import TlsMode
from devstack.services.pgbouncer import ADMIN_DATABASE, PGBOUNCER
from devstack.services.postgres import POSTGRES
from devstack.services.prometheus import prometheus_web_config
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, TLS_DIR, https_url, merged, with_probe

NOBODY = 65534  # the images' USER
SWITCH = "databaseExporters"  # on by default; off spares three containers
WEB_CONFIG = "exporter-web.yml"
UPLOADED_BECAUSE = "busybox image: no client that verifies Vault's certificate"


def web_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """The metrics listener: HTTPS only once TLS is required (--web.config.file, the exporter
    toolkit's file: prometheus-community/postgres_exporter@v0.15.0 and prometheus/mysqld_exporter
    @v0.15.1 both register it through toolkit's kingpinflag). The images' busybox wget has no
    certificate check (no Alpine ssl_client), so the probe only proves the TLS listener
    answers, as Loki's does; it sends no secret."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    web_config = f"{tls_dir}/{WEB_CONFIG}"
    url = https_url(service, "metrics", "/")
    probe = shell(f"wget -q --no-check-certificate -O /dev/null {url} || exit 1")
    return ServerTls(
        args=(f"--web.config.file={web_config}",),
        files={web_config: prometheus_web_config(tls_dir, service.name)},
        healthcheck=with_probe(service, probe),
    )


# --- PostgreSQL ---------------------------------------------------------------------------------

POSTGRES_DATABASE = "postgres"  # the monitoring role may CONNECT here only (devstack.services.postgres)


def postgres_uri(mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    """DATA_SOURCE_URI (host:port/database?options; the exporter adds user and password from
    the files): libpq's sslmode through lib/pq, verify-full against the CA once TLS is required."""
    address = f"{POSTGRES.name}:{POSTGRES.port('postgres').container}/{POSTGRES_DATABASE}"
    if mode is TlsMode.REQUIRED:
        return f"{address}?sslmode=verify-full&sslrootcert={tls_dir}/{CA_FILE}"
    return f"{address}?sslmode=disable"


def _postgres_tls(service: Service, mode: TlsMode) -> ServerTls:
    client = ServerTls(env={"DATA_SOURCE_URI": postgres_uri(mode)}) if mode is TlsMode.REQUIRED else ServerTls()
    return merged(web_tls(service, mode), client)


# The names this exporter writes (postgres_exporter@v0.15.0: cmd/postgres_exporter/
# postgres_exporter.go `pg_up`, pg_setting.go `pg_settings_<name>`, queries.go
# pg_stat_activity as `pg_stat_activity_count` by datname and state), all as old as Debian's 0.11.
POSTGRES_EXPORTER = Service(
    name="postgres-exporter",
    image="quay.io/prometheuscommunity/postgres-exporter",
    tag="v0.15.0",
    tier=Tier.OBSERVABILITY,
    host_id=43,
    ports=(Port("metrics", 9187),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9187/")),
    limits=Limits(0.25, 32),
    profiles=FULL,
    switch=SWITCH,
    hardening=Hardening(user=f"{NOBODY}:{NOBODY}"),
    depends_on=("vault", "postgres"),
    flows=(VAULT_FLOW, Flow("postgres", "postgres")),
    env=MappingProxyType({"DATA_SOURCE_URI": postgres_uri(TlsMode.OFF)}),
    client_role=ClientRole.MONITOR,
    credentials=Credentials(
        entrypoint=("/bin/postgres_exporter",),
        # postgres_exporter@v0.15.0:cmd/postgres_exporter/datasource.go: *_FILE wins over the value
        env=secret_files(DATA_SOURCE_USER_FILE="postgres_user", DATA_SOURCE_PASS_FILE="postgres_password"),
        run_as_uid=NOBODY,
        uploaded_because=UPLOADED_BECAUSE,
    ),
    tls=TlsSupport(owner=NOBODY, settings=_postgres_tls),
    metrics=Metrics(
        "metrics",
        exported=("pg_up", "pg_settings_max_connections", "pg_stat_activity_count"),
        dashboard="postgres.json",
    ),
)


# --- MySQL --------------------------------------------------------------------------------------

MY_CNF = f"{SECRETS_DIR}/my.cnf"


def mysql_client_cnf(mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    """The [client] file --config.my-cnf reads (mysqld_exporter@v0.15.1:config/config.go: user,
    password, host, port, ssl-ca; Debian's 0.14 reads the same keys), a template the wrapper
    fills with the account's user and password. With ssl-ca the Go driver verifies the chain
    and the host name `mysql`, which the server's certificate carries."""
    lines = [
        "[client]",
        "user = {{mysql_user}}",
        "password = {{mysql_password}}",
        "host = mysql",
        "port = 3306",
    ]
    if mode is TlsMode.REQUIRED:
        lines.append(f"ssl-ca = {tls_dir}/{CA_FILE}")
    return "\n".join(lines) + "\n"


def _mysql_tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is not TlsMode.REQUIRED:
        return web_tls(service, mode)
    client = ServerTls(files={f"{TEMPLATE_DIR}/my.cnf": mysql_client_cnf(mode)})
    return merged(web_tls(service, mode), client)


# mysqld_exporter@v0.15.1: mysqld_exporter.go `mysql_up`; collector/global_status.go and
# global_variables.go (`mysql_global_status_<name>`, `mysql_global_variables_<name>`).
MYSQL_EXPORTER = Service(
    name="mysql-exporter",
    image="prom/mysqld-exporter",
    tag="v0.15.1",
    tier=Tier.OBSERVABILITY,
    host_id=44,
    ports=(Port("metrics", 9104),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9104/")),
    limits=Limits(0.25, 32),
    profiles=FULL,
    switch=SWITCH,
    hardening=Hardening(user=f"{NOBODY}:{NOBODY}"),
    depends_on=("vault", "mysql"),
    flows=(VAULT_FLOW, Flow("mysql", "mysql")),
    client_role=ClientRole.MONITOR,
    credentials=Credentials(
        entrypoint=("/bin/mysqld_exporter", f"--config.my-cnf={MY_CNF}"),
        # LINE: written as is, a control character refused; the generated passwords are
        # alphanumeric, so no `#` can start a comment in the option file.
        templates=(Template("my.cnf", MY_CNF, mysql_client_cnf(TlsMode.OFF), ValueSyntax.LINE),),
        run_as_uid=NOBODY,
        uploaded_because=UPLOADED_BECAUSE,
    ),
    tls=TlsSupport(owner=NOBODY, settings=_mysql_tls),
    metrics=Metrics(
        "metrics",
        exported=("mysql_up", "mysql_global_status_threads_connected", "mysql_global_variables_max_connections"),
        dashboard="mysql.json",
    ),
)

# --- PgBouncer ----------------------------------------------------------------------------------

PGPASS = f"{SECRETS_DIR}/pgpass"
PGBOUNCER_EXPORTER_NAME = "pgbouncer-exporter"


def pgbouncer_connection(mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    """The exporter's connection string (pgbouncer_exporter@v0.12.1: --pgBouncer.connectionString,
    or PGBOUNCER_EXPORTER_CONNECTION_STRING) without a password: lib/pq v1.12.3 then reads the
    password file PGPASSFILE names (internal/pgpass). Verified against the CA once TLS is
    required, when PgBouncer refuses a plaintext client (client_tls_sslmode = require)."""
    user = account_user(PGBOUNCER_EXPORTER_NAME)
    address = f"{PGBOUNCER.name}:{PGBOUNCER.port('pgbouncer').container}/{ADMIN_DATABASE}"
    options = f"sslmode=verify-full&sslrootcert={tls_dir}/{CA_FILE}" if mode is TlsMode.REQUIRED else "sslmode=disable"
    return f"postgres://{user}@{address}?{options}"


def _pgbouncer_tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is not TlsMode.REQUIRED:
        return web_tls(service, mode)
    client = ServerTls(env={"PGBOUNCER_EXPORTER_CONNECTION_STRING": pgbouncer_connection(mode)})
    return merged(web_tls(service, mode), client)


# libpq's password file: host:port:database:user:password, any host and port (one server). The
# generated passwords are alphanumeric (components.secrets), so no `:` or backslash needs escaping.
PGPASS_LINE = f"*:*:{ADMIN_DATABASE}:{{{{pgbouncer_user}}}}:{{{{pgbouncer_password}}}}\n"

# pgbouncer_exporter@v0.12.1 (collector.go, namespace `pgbouncer`): `pgbouncer_up` (the scrape
# reached PgBouncer), SHOW POOLS' cl_waiting and maxwait as
# `pgbouncer_pools_client_waiting_connections` and `pgbouncer_pools_client_maxwait_seconds`
# (by database and user). Debian's prometheus-pgbouncer-exporter 1.7, another program, names
# cl_waiting `pgbouncer_waiting_clients` and has neither of the others
# (tests/test_pgbouncer_exporter_real.py).
PGBOUNCER_EXPORTER = Service(
    name=PGBOUNCER_EXPORTER_NAME,
    image="quay.io/prometheuscommunity/pgbouncer-exporter",
    tag="v0.12.1",
    tier=Tier.OBSERVABILITY,
    host_id=46,
    ports=(Port("metrics", 9127),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9127/")),
    limits=Limits(0.25, 32),
    profiles=FULL,
    switch=SWITCH,
    hardening=Hardening(user=f"{NOBODY}:{NOBODY}"),
    depends_on=("vault", PGBOUNCER.name),
    flows=(VAULT_FLOW, Flow(PGBOUNCER.name, "pgbouncer")),
    env=MappingProxyType(
        {"PGBOUNCER_EXPORTER_CONNECTION_STRING": pgbouncer_connection(TlsMode.OFF), "PGPASSFILE": PGPASS}
    ),
    client_role=ClientRole.MONITOR,
    credentials=Credentials(
        entrypoint=("/bin/pgbouncer_exporter",),
        templates=(Template("pgpass", PGPASS, PGPASS_LINE, ValueSyntax.LINE),),
        run_as_uid=NOBODY,
        uploaded_because=UPLOADED_BECAUSE,
    ),
    tls=TlsSupport(owner=NOBODY, settings=_pgbouncer_tls),
    metrics=Metrics(
        "metrics",
        exported=(
            "pgbouncer_up",
            "pgbouncer_pools_client_waiting_connections",
            "pgbouncer_pools_client_maxwait_seconds",
        ),
        dashboard="pgbouncer.json",
    ),
)

EXPORTERS: tuple[Service, ...] = (POSTGRES_EXPORTER, MYSQL_EXPORTER, PGBOUNCER_EXPORTER)
