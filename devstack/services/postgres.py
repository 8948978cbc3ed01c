"""PostgreSQL: the catalog entry, its TLS settings per mode, and its clients' accounts with the
psql script that creates them (PgBouncer's auth_query lookup function included)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata
from collections.abc import Mapping, Sequence

from devstack.accounts import Account, AccountKind, check_reserved, check_unique, login_account, sh_quote
from devstack.backups import BACKUP_USER, OLD_SUFFIX, PREAMBLE, RESTORE_USER, SIDE_SUFFIX, old, side
from devstack.model import (
    MIN_UP,
    AccountServer,
    Backup,
    ClientRole,
    Credentials,
    Hardening,
    Healthcheck,
    Limits,
    Login,
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

ADMIN_USER = "dev_admin"

# --- TLS ------------------------------------------------------------------------------------------

PG_HBA = "pg_hba.conf"

# Required mode: the container's own socket stays trusted (health checks and the account
# setup use it), and every network connection must be TLS with a password.
PG_HBA_REQUIRED = """# devstack, TLS required: no plaintext over the network.
local     all  all                  trust
hostssl   all  all  0.0.0.0/0       scram-sha-256
hostssl   all  all  ::/0            scram-sha-256
hostnossl all  all  0.0.0.0/0       reject
hostnossl all  all  ::/0            reject
"""


def postgres_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    """`postgres` server arguments (appended to the image's command)."""
    if mode is TlsMode.OFF:
        return ()
    settings = {
        "ssl": "on",
        "ssl_cert_file": f"{tls_dir}/{CERT_FILE}",
        "ssl_key_file": f"{tls_dir}/{KEY_FILE}",
        "ssl_ca_file": f"{tls_dir}/{CA_FILE}",
        "ssl_min_protocol_version": "TLSv1.2",
        "ssl_ciphers": CIPHERS,
        "ssl_prefer_server_ciphers": "on",
    }
    if mode is TlsMode.REQUIRED:
        settings["hba_file"] = f"{tls_dir}/{PG_HBA}"
    return tuple(arg for key, value in settings.items() for arg in ("-c", f"{key}={value}"))


def postgres_files(mode: TlsMode, tls_dir: str = TLS_DIR) -> dict[str, str]:
    return {f"{tls_dir}/{PG_HBA}": PG_HBA_REQUIRED} if mode is TlsMode.REQUIRED else {}


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    return ServerTls(args=postgres_args(mode), files=postgres_files(mode))


# --- Tuning: settings from the container's own memory limit -------------------------------------

# Connections: PgBouncer's pools to the databases its clients use, the clients that connect
# directly (Forgejo, Vector, the APIs), and the superuser's reserve. PgBouncer's module reads the
# pool figures from here, so its pools and max_connections cannot drift apart.
POOL_SIZE = 10  # PgBouncer's default_pool_size: server connections per (database, user)
POOL_MAX_PER_DATABASE = 20  # PgBouncer's max_db_connections
POOLED_DATABASES = 2  # databases the pooler is budgeted for at once
DIRECT_CONNECTIONS = 30
SUPERUSER_RESERVED = 3
MAX_CONNECTIONS = POOL_MAX_PER_DATABASE * POOLED_DATABASES + DIRECT_CONNECTIONS + SUPERUSER_RESERVED


def postgres_settings(limit_mb: int) -> dict[str, str]:
    """PostgreSQL's memory, connection and WAL settings for a container limit (MiB).

    A container's page cache counts against its limit, so the cache estimate stays inside it:
    shared_buffers a quarter, effective_cache_size three quarters. work_mem is what is left
    after shared_buffers, shared by every connection running up to four sorts or hashes at once.
    WAL: a laptop's SSD (random reads cost little more than sequential ones), checkpoints spread
    out and rarer, WAL compressed, the disk footprint bounded; durability left as it is.
    """
    shared_buffers = max(limit_mb // 4, 32)
    work_mem_kb = max((limit_mb - shared_buffers) * 1024 // (MAX_CONNECTIONS * 4), 1024)
    return {
        "shared_buffers": f"{shared_buffers}MB",
        "effective_cache_size": f"{limit_mb * 3 // 4}MB",
        "work_mem": f"{work_mem_kb}kB",
        "maintenance_work_mem": f"{min(max(limit_mb // 16, 16), 512)}MB",
        "max_connections": str(MAX_CONNECTIONS),
        "superuser_reserved_connections": str(SUPERUSER_RESERVED),
        "max_wal_size": "1GB",
        "min_wal_size": "128MB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "lz4",  # cheaper on CPU than pglz; both images are built with it
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
    }


def _tuning(service: Service, limit_mb: int) -> Tuning:
    settings = postgres_settings(limit_mb)
    caches = {k: settings[k] for k in ("shared_buffers", "effective_cache_size", "work_mem", "max_connections")}
    return Tuning(args=tuple(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")), caches=caches)


# --- Accounts -------------------------------------------------------------------------------------

# What PgBouncer runs (with `auth_user = <pooler account>` and `auth_dbname = postgres`).
PGBOUNCER_AUTH_QUERY = "SELECT username, password FROM pgbouncer.get_auth($1)"

_RESERVED_ROLES = frozenset({"postgres", "public", "none", "current_user", "current_role", "session_user"})
_RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})


def pg_identifier(name: str) -> str:
    """A PostgreSQL identifier, double-quoted (inner double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def pg_literal(value: str) -> str:
    """A standard-conforming PostgreSQL string literal (the script sets standard_conforming_strings)."""
    return "'" + value.replace("'", "''") + "'"


_PG_LOGIN = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT -1"

_PG_AUTH_FUNCTION = """\
CREATE FUNCTION pgbouncer.get_auth(p_usename text)
    RETURNS TABLE (username text, password text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $get_auth$
    SELECT a.rolname::text, a.rolpassword
      FROM pg_catalog.pg_authid AS a
     WHERE a.rolname = p_usename
       AND a.rolcanlogin
       AND NOT a.rolsuper
       AND NOT a.rolreplication
       AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > pg_catalog.now())
$get_auth$;"""


# PostgreSQL's own default (scram_iterations): what a server-side `PASSWORD '...'` would use.
SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677), computed here
    so that the password itself never reaches the server: no statement, log line or
    pg_stat_activity row can show it. The password is prepared as PostgreSQL's SCRAM does."""
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    keys = f"{_b64(stored_key)}:{_b64(server_key)}"
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${keys}"


def _prohibited(c: str) -> bool:
    tables = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4)
    tables += (stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8)
    return any(table(c) for table in (*tables, stringprep.in_table_c9, stringprep.in_table_a1))


def saslprep(password: str) -> str:
    """The password as PostgreSQL's SCRAM prepares it (RFC 4013, Unicode 3.2 tables, unassigned
    code points prohibited): ASCII as it is; otherwise mapped and NFKC-normalised, or the
    password unchanged when the result would hold a prohibited character or break the bidi rule
    (PostgreSQL then falls back to the raw bytes, and so does this)."""
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not prepared or any(_prohibited(c) for c in prepared):
        return password
    right_to_left = [stringprep.in_table_d1(c) for c in prepared]
    if any(right_to_left) and (
        any(stringprep.in_table_d2(c) for c in prepared) or not (right_to_left[0] and right_to_left[-1])
    ):
        return password
    return prepared


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scram_salt(account: Account, salt_key: str | None) -> bytes:
    """A fresh random salt, or (keyed with the admin password) one derived from the account and
    its password: the same inputs give the same script, so an unchanged account does not re-run
    the step on every `pulumi up`, and a new password gets a new salt. Keyed, so the salt tells
    nothing about the password to whoever reads pg_authid without the admin password."""
    if salt_key is None:
        return os.urandom(SCRAM_SALT_BYTES)
    message = "\0".join(("devstack-scram-salt", account.name, account.password)).encode()
    return hmac.new(salt_key.encode(), message, hashlib.sha256).digest()[:SCRAM_SALT_BYTES]


def postgres_setup_sql(
    accounts: Sequence[Account], pgbouncer_auth_user: str | None = None, salt_key: str | None = None
) -> str:
    """A psql script (run as the admin, in the `postgres` database) that sets up every account.

    APP: a LOGIN role with its SCRAM-SHA-256 verifier (scram_verifier), and if it has a database,
    that database owned by it with CONNECT and TEMPORARY revoked from PUBLIC (other roles cannot
    connect).
    MONITOR: a LOGIN role in pg_monitor, read-only by default, CONNECT on `postgres`.
    BACKUP (the management's): a LOGIN role in pg_read_all_data, read-only by default, CONNECT
    on every database (what pg_dump needs, and nothing it could write with).
    RESTORE (the management's): a LOGIN role with CREATEDB, a member of every app role that owns
    a database (so it creates the side copy owned by that role, restores as it, renames it into
    place), CONNECT on every database; no superuser, no role administration.
    `pgbouncer_auth_user` names an APP account without a database: it may connect to `postgres`
    and is the only role that may EXECUTE pgbouncer.get_auth(text), a SECURITY DEFINER lookup
    of a role's SCRAM verifier (never a superuser's) for PgBouncer's auth_query. Without it the
    function is dropped.
    """
    check_unique(accounts)
    check_reserved(accounts, _RESERVED_ROLES, _RESERVED_DATABASES, "PostgreSQL", reserved_prefix="pg_")
    pooler = _pooler_account(accounts, pgbouncer_auth_user)

    out = [
        "-- devstack: client accounts (generated; idempotent, safe to re-run)",
        r"\set ON_ERROR_STOP on",
        "SET client_min_messages = warning;",
        "SET standard_conforming_strings = on;",
        "SET password_encryption = 'scram-sha-256';",
        "DO $check$ BEGIN IF pg_catalog.current_database() <> 'postgres' THEN"
        " RAISE EXCEPTION 'devstack: run the accounts script in the postgres database, not %',"
        " pg_catalog.current_database(); END IF; END $check$;",
    ]
    if accounts:
        names = ", ".join(pg_literal(a.name) for a in accounts)
        out.append(
            "DO $guard$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles"
            f" WHERE rolname IN ({names}) AND (rolsuper OR rolname = CURRENT_USER)) THEN"
            " RAISE EXCEPTION 'devstack: a client account has the name of a superuser role'; END IF; END $guard$;"
        )
    out += [
        "-- nobody but the admin creates objects in the postgres database (the default since 15)",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
    ]
    for account in accounts:
        out += _pg_account(account, scram_verifier(account.password, scram_salt(account, salt_key)))
    out += _pg_management(accounts)
    out.append("")
    out += _pg_auth_function(pooler)
    return "\n".join(out) + "\n"


def _pooler_account(accounts: Sequence[Account], name: str | None) -> Account | None:
    if name is None:
        return None
    for account in accounts:
        if account.name == name:
            if account.kind is not AccountKind.APP or account.database is not None:
                raise ValueError(f"PgBouncer auth_user {name!r} must be an app account without a database")
            return account
    raise ValueError(f"PgBouncer auth_user {name!r} is not one of the accounts")


def _member_if_not(group: str, role: str, name: str) -> str:
    member = (
        "EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m"
        " JOIN pg_catalog.pg_roles AS g ON g.oid = m.roleid JOIN pg_catalog.pg_roles AS r ON r.oid = m.member"
        f" WHERE g.rolname = {pg_literal(group)} AND r.rolname = {name})"
    )
    return _gexec_if(f"GRANT {pg_identifier(group)} TO {role}", f"NOT {member}")


def _pg_management(accounts: Sequence[Account]) -> list[str]:
    """The backup and restore accounts' rights, once every app database exists."""
    lines: list[str] = []
    owners = [a for a in accounts if a.database is not None]
    for account in accounts:
        if account.kind not in (AccountKind.BACKUP, AccountKind.RESTORE):
            continue
        role, name = pg_identifier(account.name), pg_literal(account.name)
        lines += [
            "",
            f"-- {account.kind} account {account.name}: rights on every database",
            "SELECT pg_catalog.format('GRANT CONNECT ON DATABASE %I TO %I', datname, "
            f"{name}) FROM pg_catalog.pg_database WHERE NOT datistemplate \\gexec",
        ]
        if account.kind is AccountKind.BACKUP:
            lines += [
                _member_if_not("pg_read_all_data", role, name),
                f"ALTER ROLE {role} SET default_transaction_read_only = on;",
            ]
        else:
            lines += [f"ALTER ROLE {role} CREATEDB;"]
            lines += [_member_if_not(owner.name, role, name) for owner in owners]
    return lines


def _gexec_if(statement: str, condition: str) -> str:
    """Run `statement` only when `condition` holds (psql's \\gexec runs what the query returns)."""
    return f"SELECT {pg_literal(statement)} WHERE {condition} \\gexec"


def _pg_account(account: Account, verifier: str) -> list[str]:
    role = pg_identifier(account.name)
    name = pg_literal(account.name)
    is_monitor = account.kind is AccountKind.MONITOR
    in_pg_monitor = (
        "EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m"
        " JOIN pg_catalog.pg_roles AS g ON g.oid = m.roleid JOIN pg_catalog.pg_roles AS r ON r.oid = m.member"
        f" WHERE g.rolname = 'pg_monitor' AND r.rolname = {name})"
    )
    lines = [
        "",
        f"-- {account.kind} account {account.name}",
        _gexec_if(f"CREATE ROLE {role}", f"NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {name})"),
        f"ALTER ROLE {role} WITH {_PG_LOGIN} PASSWORD {pg_literal(verifier)};",
    ]
    if is_monitor:
        lines += [
            _gexec_if(f"GRANT pg_monitor TO {role}", f"NOT {in_pg_monitor}"),
            f"ALTER ROLE {role} SET default_transaction_read_only = on;",
            f"GRANT CONNECT ON DATABASE postgres TO {role};",
        ]
    else:  # the backup account's read-only default comes with its other rights (_pg_management)
        lines += [
            _gexec_if(f"REVOKE pg_monitor FROM {role}", in_pg_monitor),
            f"ALTER ROLE {role} RESET default_transaction_read_only;",
        ]
    if account.database is not None:
        database = pg_identifier(account.database)
        lines += [
            _gexec_if(
                f"CREATE DATABASE {database} OWNER {role}",
                f"NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {pg_literal(account.database)})",
            ),
            f"ALTER DATABASE {database} OWNER TO {role};",
            f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};",
        ]
    return lines


def _pg_auth_function(pooler: Account | None) -> list[str]:
    if pooler is None:
        return ["-- no PgBouncer auth_user: no lookup function", "DROP FUNCTION IF EXISTS pgbouncer.get_auth(text);"]
    role = pg_identifier(pooler.name)
    return [
        f"-- PgBouncer auth_query lookup, executable by {pooler.name} only (recreated: no stale grants)",
        f"GRANT CONNECT ON DATABASE postgres TO {role};",
        "BEGIN;",
        "CREATE SCHEMA IF NOT EXISTS pgbouncer;",
        "ALTER SCHEMA pgbouncer OWNER TO CURRENT_USER;",
        "REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;",
        "DROP FUNCTION IF EXISTS pgbouncer.get_auth(text);",
        _PG_AUTH_FUNCTION,
        "REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA pgbouncer TO {role};",
        f"GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO {role};",
        "COMMIT;",
    ]


def _setup_script(logins: Sequence[Login], admin: Mapping[str, str]) -> str:
    pooler = next((client.user for client, _ in logins if client.role is ClientRole.AUTH), None)
    accounts = [login_account(login) for login in logins]
    return postgres_setup_sql(accounts, pgbouncer_auth_user=pooler, salt_key=admin["password"])


SETUP = SetupScript(
    # Inside the container the admin connects over the local socket, which trusts it.
    # An error shows its SQLSTATE only (VERBOSITY=sqlstate): never a line of the script.
    cli=(
        *("psql", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=sqlstate", "-v", "SHOW_CONTEXT=never"),
        *("-d", "postgres", "-U", ADMIN_USER),
    ),
    script=_setup_script,
    admin_keys=("password",),
)

# --- Backups: dumps per client database, restored beside the live one and swapped in -----------

# libpq's password file, written from the password line; the connection (socket in the container,
# PGHOST/PGPORT in the tests) is libpq's default.
_PG_PASSFILE = """printf '*:*:*:*:%s\\n' "$(printf '%s' "$password" | sed 's/[\\\\:]/\\\\&/g')" > "$secrets/pgpass"
export PGPASSFILE="$secrets/pgpass"
"""

# The databases of client roles (the admin's own and the maintenance ones hold no client data),
# never a side or old copy a restore left behind.
_PG_PARTS_SQL = (
    "SELECT d.datname || '.pgdump', d.datname FROM pg_catalog.pg_database AS d"
    " JOIN pg_catalog.pg_roles AS r ON r.oid = d.datdba"
    " WHERE NOT d.datistemplate AND NOT r.rolsuper AND d.datname <> 'postgres'"
    f" AND d.datname NOT LIKE '%{SIDE_SUFFIX}' AND d.datname NOT LIKE '%{OLD_SUFFIX}' ORDER BY 1"
)

# Per table: its rows and an MD5 of its rows' text in order (run in the database itself).
_PG_FINGERPRINT_SQL = (
    "SELECT pg_catalog.format('SELECT %L, count(*), coalesce(md5(string_agg(t::text, E''\\n''"
    " ORDER BY t::text)), '''') FROM %I.%I AS t', n.nspname || '.' || c.relname, n.nspname, c.relname)"
    " FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1 \\gexec"
)


def _psql(user: str, database: str) -> str:
    return f"psql -X -q -At -F '\t' -v ON_ERROR_STOP=1 -U {user} -d {sh_quote(database)}"


def _pg_script(body: str) -> str:
    return PREAMBLE + _PG_PASSFILE + body


def _pg_fingerprint(part: Part, on_side: bool) -> str:
    user, database = (RESTORE_USER, side(part.target)) if on_side else (BACKUP_USER, part.target)
    return _pg_script(f"{_psql(user, database)} <<'SQL'\n{_PG_FINGERPRINT_SQL}\nSQL\n")


def _pg_restore(part: Part) -> str:
    """The side copy, owned by the live database's owner (or, the live one gone, the role the
    database is named after) and restored as that role, from the dump on the rest of stdin."""
    db, copy = pg_literal(part.target), side(part.target)
    owner_sql = (
        "SELECT coalesce((SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database"
        f" WHERE datname = {db}), (SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = {db}))"
    )
    create = f"SELECT pg_catalog.format('CREATE DATABASE %I OWNER %I', {pg_literal(copy)}, :'owner') \\gexec"
    psql = _psql(RESTORE_USER, "postgres")
    body = f"""owner=$({psql} -c {sh_quote(owner_sql)} </dev/null)
[ -n "$owner" ] || {{ echo "no owner role for database {part.target}" >&2; exit 1; }}
{psql} -c {sh_quote(f"DROP DATABASE IF EXISTS {pg_identifier(copy)}")} </dev/null
printf '%s\\n' {sh_quote(create)} | {psql} -v owner="$owner"
pg_restore --exit-on-error --no-owner --role="$owner" -U {RESTORE_USER} -d {sh_quote(copy)}
"""
    return _pg_script(body)


def _pg_swap(part: Part) -> str:
    live, copy, previous = (pg_identifier(n) for n in (part.target, side(part.target), old(part.target)))
    name = pg_literal(part.target)
    sql = f"""SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = {name};
DROP DATABASE IF EXISTS {previous};
SELECT 'ALTER DATABASE {live} RENAME TO {previous}'
 WHERE EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = {name}) \\gexec
ALTER DATABASE {copy} RENAME TO {live};
DROP DATABASE IF EXISTS {previous};"""
    return _pg_script(f"{_psql(RESTORE_USER, 'postgres')} >/dev/null <<'SQL'\n{sql}\nSQL\n")


def _pg_discard(part: Part) -> str:
    statement = f"DROP DATABASE IF EXISTS {pg_identifier(side(part.target))}"
    return _pg_script(f"{_psql(RESTORE_USER, 'postgres')} -c {sh_quote(statement)} </dev/null\n")


def _pg_size(part: Part) -> str:
    statement = f"SELECT pg_catalog.pg_database_size({pg_literal(part.target)})"
    return _pg_script(f"{_psql(BACKUP_USER, 'postgres')} -c {sh_quote(statement)} </dev/null\n")


BACKUP = Backup(
    parts=_pg_script(f"{_psql(BACKUP_USER, 'postgres')} -c {sh_quote(_PG_PARTS_SQL)} </dev/null\n"),
    dump=lambda part: _pg_script(f"pg_dump -Fc -U {BACKUP_USER} -d {sh_quote(part.target)} </dev/null\n"),
    fingerprint=_pg_fingerprint,
    restore=_pg_restore,
    swap=_pg_swap,
    discard=_pg_discard,
    version="pg_dump --version",
    # A data disk filled to the last byte stops PostgreSQL: the dirty pages of the side copy
    # cannot be written, and the checkpoint DROP DATABASE forces PANICs (measured with Debian's
    # 15 on a full tmpfs). So the side copies must fit, with room for WAL segments and checkpoints.
    size=_pg_size,
    free=_pg_script("df -Pk \"${PGDATA:-/var/lib/postgresql}\" | awk 'NR == 2 { print $4 }'\n"),
    reserve_mb=64,
)

# --- The catalog entry ----------------------------------------------------------------------------

POSTGRES = Service(
    name="postgres",
    image="postgres",
    tag="18.1-bookworm",
    tier=Tier.DATA,
    host_id=10,
    ports=(Port("postgres", 5432, 5432),),
    volumes=(VolumeMount("postgres-data", "/var/lib/postgresql"),),
    healthcheck=Healthcheck(
        ("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"),
        interval="15s",
        timeout="5s",
        retries=5,
    ),
    limits=Limits(2, 256, weight=6),
    profiles=MIN_UP,
    # postgres (Debian): groupadd/useradd postgres with 999 in its Dockerfile; its entrypoint runs as
    # any user that owns the data folder (it steps down with gosu only when started as root).
    hardening=Hardening(
        user="999:999",
        pids=512,
        pids_reason="a server process per connection (max_connections 100) besides its workers",
    ),
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "postgres"),
        fields=(SecretField("user", ADMIN_USER), SecretField("password"), SecretField("database", "dev_database")),
        env=secret_files(POSTGRES_USER_FILE="user", POSTGRES_PASSWORD_FILE="password", POSTGRES_DB_FILE="database"),
        owner="postgres:postgres",
    ),
    tls=TlsSupport(owner=999, settings=_tls),
    serves=AccountServer(
        "postgres", port="postgres", setup=SETUP, backup_roles=(ClientRole.BACKUP, ClientRole.RESTORE)
    ),
    tuning=_tuning,
    backup=BACKUP,
)
