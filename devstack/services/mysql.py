"""MySQL 8 (and MariaDB, which the real tests run): the catalog entry, its TLS options per mode,
and its clients' accounts with the mysql-client script that creates them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devstack.accounts import Account, AccountKind, check_reserved, check_unique, login_account
from devstack.model import (
    SECRETS_DIR,
    STD_UP,
    AccountServer,
    Credentials,
    Hardening,
    Healthcheck,
    Limits,
    Port,
    SecretField,
    ServerTls,
    Service,
    SetupScript,
    Tier,
    TlsSupport,
    Tuning,
    VolumeMount,
    secret_files,
)
from devstack.phases import TlsMode
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, CIPHERS, KEY_FILE, TLS_DIR


def mysql_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    """`mysqld` options (appended to the image's command) for MySQL 8.0 that MariaDB 10.11 takes
    too. The TLS 1.3 suites stay the library's (all AEAD); `--ssl-cipher` limits TLS 1.2."""
    if mode is TlsMode.OFF:
        return ()
    args = (
        f"--ssl-cert={tls_dir}/{CERT_FILE}",
        f"--ssl-key={tls_dir}/{KEY_FILE}",
        f"--ssl-ca={tls_dir}/{CA_FILE}",
        "--tls-version=TLSv1.2,TLSv1.3",
        f"--ssl-cipher={CIPHERS}",
    )
    if mode is TlsMode.REQUIRED:
        args += ("--require-secure-transport=ON",)  # TCP without TLS refused; the socket stays open
    return args


# --- Tuning: settings from the container's own memory limit -------------------------------------

MYSQL_OVERHEAD_MB = 384  # performance_schema, per-connection buffers, the server itself
MYSQL_MAX_CONNECTIONS = 60  # the APIs' pools and the admin; MySQL's 151 costs memory per thread
BUFFER_POOL_CHUNK_MB = 128  # InnoDB sizes the pool in chunks: a multiple is taken as is


def mysql_settings(limit_mb: int) -> dict[str, str]:
    """InnoDB's buffer pool gets three quarters of what the server's own overhead leaves, in
    whole chunks; the redo log a quarter of the pool (bounded), so a checkpoint is not forced
    every few megabytes of writes. `innodb_log_file_size` is what MariaDB and MySQL 8.0 both
    read (MySQL 8.0.30+ derives its redo capacity from it when innodb_redo_log_capacity is unset)."""
    usable = max(limit_mb - MYSQL_OVERHEAD_MB, 0) * 3 // 4
    pool = max(usable // BUFFER_POOL_CHUNK_MB, 1) * BUFFER_POOL_CHUNK_MB
    return {
        "innodb-buffer-pool-size": f"{pool}M",
        "innodb-log-file-size": f"{min(max(pool // 4, 48), 512)}M",
        "max-connections": str(MYSQL_MAX_CONNECTIONS),
    }


def _tuning(service: Service, limit_mb: int) -> Tuning:
    settings = mysql_settings(limit_mb)
    return Tuning(args=tuple(f"--{k}={v}" for k, v in settings.items()), caches=settings)


_RESERVED_USERS = frozenset({"root", "mysql", "mariadb"})
_RESERVED_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema"})


def mysql_literal(value: str) -> str:
    """A MySQL string literal; the script turns NO_BACKSLASH_ESCAPES off, so `\\` is escaped too."""
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + escaped.replace("\x1a", "\\Z") + "'"


def mysql_identifier(name: str) -> str:
    """A MySQL identifier in backticks (inner backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def _mysql_grant_database(name: str) -> str:
    # In GRANT ... ON db.*, `_` and `%` are wildcards; escape them so only this database matches.
    return mysql_identifier(name.replace("_", "\\_").replace("%", "\\%"))


def mysql_setup_sql(accounts: Sequence[Account]) -> str:
    """A mysql-client script (run as root) that sets up every account as 'name'@'%'.

    APP: CREATE USER IF NOT EXISTS + ALTER USER (so a new password applies), its own database
    (CREATE DATABASE IF NOT EXISTS) and ALL PRIVILEGES on that database only.
    MONITOR: PROCESS and REPLICATION CLIENT server-wide and SELECT on performance_schema (what a
    metrics exporter reads), nothing else. Works on MySQL 8.0 and MariaDB 10.4+.
    """
    check_unique(accounts)
    check_reserved(accounts, _RESERVED_USERS, _RESERVED_DATABASES, "MySQL")
    out = [
        "-- devstack: client accounts (generated; idempotent, safe to re-run)",
        "-- a known sql_mode without NO_BACKSLASH_ESCAPES: the literals below escape backslashes",
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES';",
    ]
    for account in accounts:
        user = f"{mysql_literal(account.name)}@'%'"
        password = mysql_literal(account.password)
        out += [
            "",
            f"-- {account.kind} account {account.name}",
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {password};",
            f"ALTER USER {user} IDENTIFIED BY {password};",
        ]
        if account.kind is AccountKind.MONITOR:
            out += [
                f"GRANT PROCESS, REPLICATION CLIENT ON *.* TO {user};",
                f"GRANT SELECT ON performance_schema.* TO {user};",
            ]
        if account.database is not None:
            out += [
                f"CREATE DATABASE IF NOT EXISTS {mysql_identifier(account.database)};",
                f"GRANT ALL PRIVILEGES ON {_mysql_grant_database(account.database)}.* TO {user};",
            ]
    return "\n".join(out) + "\n"


# The account step's client (scripts/mysql-root-client.sh, run by `sh -c` in the container):
# root's password from the file the wrapper wrote, never in the step's environment or argv.
ROOT_CLIENT = Path(__file__).resolve().parents[2] / "scripts" / "mysql-root-client.sh"
ROOT_PASSWORD_FILE = f"{SECRETS_DIR}/root_password"

SETUP = SetupScript(
    cli=("sh", "-c", ROOT_CLIENT.read_text(), "mysql-accounts", ROOT_PASSWORD_FILE),
    script=lambda logins, admin: mysql_setup_sql([login_account(login) for login in logins]),
    user="mysql",  # the owner of the password file, whatever capabilities root keeps
)


MYSQL = Service(
    name="mysql",
    image="mysql",
    tag="8.0.40",
    tier=Tier.DATA,
    host_id=12,
    ports=(Port("mysql", 3306, 3306),),
    volumes=(VolumeMount("mysql-data", "/var/lib/mysql"),),
    # ping succeeds on "access denied" too: it proves the server answers without a password
    healthcheck=Healthcheck(
        ("CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"),
        interval="15s",
        timeout="5s",
        retries=5,
    ),
    limits=Limits(2, 512, weight=4),
    profiles=STD_UP,
    # mysql (Oracle Linux): mysql is 999:999 in its Dockerfile, which leaves /var/run/mysqld 1777;
    # its entrypoint runs as that user without gosu.
    hardening=Hardening(user="999:999", pids=512, pids_reason="a thread per connection besides InnoDB's own"),
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "mysqld"),
        fields=(SecretField("root_password"),),
        env=secret_files(MYSQL_ROOT_PASSWORD_FILE="root_password"),
        owner="mysql:mysql",
    ),
    tls=TlsSupport(owner=999, settings=lambda service, mode: ServerTls(args=mysql_args(mode))),
    serves=AccountServer("mysql", port="mysql", setup=SETUP),
    tuning=_tuning,
)
