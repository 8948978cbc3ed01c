"""MySQL 8 (and MariaDB, which the real tests run): the catalog entry, its TLS options per mode,
and its clients' accounts with the mysql-client script that creates them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devstack.accounts import Account, AccountKind, check_reserved, check_unique, login_account, sh_quote
from devstack.backups import BACKUP_USER, OLD_SUFFIX, PREAMBLE, RESTORE_USER, SIDE_SUFFIX, old, side
from devstack.model import (
    SECRETS_DIR,
    STD_UP,
    AccountServer,
    Backup,
    ClientRole,
    Credentials,
    Hardening,
    Healthcheck,
    Limits,
    Part,
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
    metrics exporter reads), nothing else. BACKUP (the management's): on each client database
    what `mysqldump --single-transaction` of its tables and triggers needs (SELECT, SHOW VIEW,
    TRIGGER, LOCK TABLES), nothing server-wide. RESTORE: everything on each client database and
    on its side and old copies, where a restore loads and swaps. Works on MySQL 8.0 and MariaDB 10.4+.
    """
    check_unique(accounts)
    check_reserved(accounts, _RESERVED_USERS, _RESERVED_DATABASES, "MySQL")
    databases = [a.database for a in accounts if a.database is not None]
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
        out += _management_grants(account, user, databases)
        if account.database is not None:
            out += [
                f"CREATE DATABASE IF NOT EXISTS {mysql_identifier(account.database)};",
                f"GRANT ALL PRIVILEGES ON {_mysql_grant_database(account.database)}.* TO {user};",
            ]
    return "\n".join(out) + "\n"


def _management_grants(account: Account, user: str, databases: Sequence[str]) -> list[str]:
    if account.kind is AccountKind.BACKUP:
        return [
            f"GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES ON {_mysql_grant_database(d)}.* TO {user};"
            for d in databases
        ]
    if account.kind is AccountKind.RESTORE:
        names = [n for d in databases for n in (d, side(d), old(d))]
        return [f"GRANT ALL PRIVILEGES ON {_mysql_grant_database(n)}.* TO {user};" for n in names]
    return []


# The account step's client (scripts/mysql-root-client.sh, run by `sh -c` in the container):
# root's password from the file the wrapper wrote, never in the step's environment or argv.
ROOT_CLIENT = Path(__file__).resolve().parents[2] / "scripts" / "mysql-root-client.sh"
ROOT_PASSWORD_FILE = f"{SECRETS_DIR}/root_password"

SETUP = SetupScript(
    cli=("sh", "-c", ROOT_CLIENT.read_text(), "mysql-accounts", ROOT_PASSWORD_FILE),
    script=lambda logins, admin: mysql_setup_sql([login_account(login) for login in logins]),
    user="mysql",  # the owner of the password file, whatever capabilities root keeps
)


# --- Backups: a consistent dump per client database, restored beside it and swapped in ---------


# The client's option file, written from the password line; the connection (the socket in the
# container, MYSQL_UNIX_PORT in the tests) is the client's default.
def _my_options(user: str) -> str:
    return f"""escaped=$(printf '%s' "$password" | sed 's/[\\\\"]/\\\\&/g')
printf '[client]\\nuser={user}\\npassword="%s"\\n' "$escaped" > "$secrets/my.cnf"
if [ -n "${{MYSQL_UNIX_PORT:-}}" ]; then printf 'socket=%s\\n' "$MYSQL_UNIX_PORT" >> "$secrets/my.cnf"; fi
"""


def _mysql(*args: str) -> str:
    return " ".join(["mysql", '--defaults-extra-file="$secrets/my.cnf"', "-N", "-B", *args])


def _my_script(user: str, body: str) -> str:
    return PREAMBLE + _my_options(user) + body


_MY_SYSTEM = "'mysql', 'sys', 'information_schema', 'performance_schema'"
_MY_SIDE_LIKE, _MY_OLD_LIKE = (suffix.replace("_", "\\_") for suffix in (SIDE_SUFFIX, OLD_SUFFIX))
_MY_PARTS_SQL = (
    "SELECT CONCAT(SCHEMA_NAME, '.sql'), SCHEMA_NAME FROM information_schema.SCHEMATA"
    f" WHERE SCHEMA_NAME NOT IN ({_MY_SYSTEM})"
    f" AND SCHEMA_NAME NOT LIKE '%{_MY_SIDE_LIKE}' AND SCHEMA_NAME NOT LIKE '%{_MY_OLD_LIKE}' ORDER BY 1"
)


def _my_fingerprint(part: Part, on_side: bool) -> str:
    """Per base table: its rows and CHECKSUM TABLE (the same server compares like with like)."""
    user, database = (RESTORE_USER, side(part.target)) if on_side else (BACKUP_USER, part.target)
    tables = (
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
        f" AND TABLE_SCHEMA = {mysql_literal(database)} ORDER BY 1"
    )
    body = f"""{_mysql("-e", sh_quote(tables))} </dev/null | while IFS= read -r table; do
    quoted=$(printf '%s' "$table" | sed 's/`/``/g')
    rows=$({_mysql(sh_quote(database), "-e")} "SELECT COUNT(*) FROM \\`$quoted\\`" </dev/null)
    sum=$({_mysql(sh_quote(database), "-e")} "CHECKSUM TABLE \\`$quoted\\`" </dev/null | cut -f2)
    printf '%s\\t%s\\t%s\\n' "$table" "$rows" "$sum"
done
"""
    return _my_script(user, body)


def _my_restore(part: Part) -> str:
    copy = mysql_identifier(side(part.target))
    statements = f"DROP DATABASE IF EXISTS {copy}; CREATE DATABASE {copy};"
    body = f"""{_mysql("-e", sh_quote(statements))} </dev/null
{_mysql(sh_quote(side(part.target)))}
"""
    return _my_script(RESTORE_USER, body)


def _my_swap(part: Part) -> str:
    """Every table of the live database moves aside and the side copy's take their places in one
    RENAME TABLE (atomic); then the emptied databases go."""
    live, copy = mysql_literal(part.target), mysql_literal(side(part.target))
    ids = {k: mysql_identifier(v) for k, v in (("l", part.target), ("s", side(part.target)), ("o", old(part.target)))}
    renames = (
        "SET SESSION group_concat_max_len = 16777216;"
        " SELECT CONCAT('RENAME TABLE ', GROUP_CONCAT(r ORDER BY k SEPARATOR ', ')) FROM ("
        f" SELECT 0 AS k, CONCAT('{ids['l']}.`', REPLACE(TABLE_NAME, '`', '``'), '` TO {ids['o']}.`',"
        " REPLACE(TABLE_NAME, '`', '``'), '`') AS r FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {live} UNION ALL"
        f" SELECT 1, CONCAT('{ids['s']}.`', REPLACE(TABLE_NAME, '`', '``'), '` TO {ids['l']}.`',"
        " REPLACE(TABLE_NAME, '`', '``'), '`') FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {copy}) AS moves"
    )
    prepare = (
        f"DROP DATABASE IF EXISTS {ids['o']}; CREATE DATABASE {ids['o']}; CREATE DATABASE IF NOT EXISTS {ids['l']};"
    )
    body = f"""{_mysql("-e", sh_quote(prepare))} </dev/null
statement=$({_mysql("-e", sh_quote(renames))} </dev/null)
if [ "$statement" != NULL ]; then
    printf '%s;\\n' "$statement" | {_mysql()}
fi
{_mysql("-e", sh_quote(f"DROP DATABASE {ids['o']}; DROP DATABASE {ids['s']};"))} </dev/null
"""
    return _my_script(RESTORE_USER, body)


def _my_discard(part: Part) -> str:
    statement = f"DROP DATABASE IF EXISTS {mysql_identifier(side(part.target))};"
    return _my_script(RESTORE_USER, f"{_mysql('-e', sh_quote(statement))} </dev/null\n")


# --single-transaction: one consistent snapshot of InnoDB without locking; no tablespaces (that
# needs PROCESS), no routines or events (the apps keep none), no CREATE DATABASE: the restore
# chooses the database.
_MYSQLDUMP = (
    'mysqldump --defaults-extra-file="$secrets/my.cnf"'
    " --single-transaction --no-tablespaces --skip-lock-tables --hex-blob"
)

BACKUP = Backup(
    parts=_my_script(BACKUP_USER, f"{_mysql('-e', sh_quote(_MY_PARTS_SQL))} </dev/null\n"),
    dump=lambda part: _my_script(BACKUP_USER, f"{_MYSQLDUMP} {sh_quote(part.target)} </dev/null\n"),
    fingerprint=_my_fingerprint,
    restore=_my_restore,
    swap=_my_swap,
    discard=_my_discard,
    version="mysqldump --version",
    # InnoDB refuses the row (ER_RECORD_FILE_FULL) when it cannot extend a table's file on a full
    # disk; the server goes on (tests/test_backup_full_disk_real.py).
    full_disk_signs=("ERROR 1114 (HY000)",),
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
    serves=AccountServer("mysql", port="mysql", setup=SETUP, backup_roles=(ClientRole.BACKUP, ClientRole.RESTORE)),
    tuning=_tuning,
    backup=BACKUP,
)
