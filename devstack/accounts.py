"""Per-client accounts on the data services, as complete scripts for each server's own CLI.

Every client of a data service gets its own account there; the admin password stays with the
platform. The functions here are pure: they turn a list of accounts into the text that
`pulumi up` feeds on stdin to `docker exec -i dev-<server> <cli>`, so no secret ever appears in
a process's argv. Every script is idempotent: it creates what is missing and otherwise brings
the existing account in line (a new password replaces the old one), so it runs on every
`pulumi up`. Accounts dropped from the list are left in place (data is never deleted here).

- PostgreSQL: `psql -v ON_ERROR_STOP=1 -U <admin> -d postgres` reads `postgres_setup_sql(...)`.
- MySQL 8 / MariaDB: `mysql -uroot` (MYSQL_PWD in the environment) reads `mysql_setup_sql(...)`.
- Redis 7: `redis_acl_lines(...)` go into each node's config file (verifiers only, no plaintext).
- MongoDB: `mongosh --quiet` reads `mongo_setup_js(...)` (it authenticates as admin itself).
- RabbitMQ: `sh` reads `rabbitmq_setup_sh(...)`; rabbitmqctl gets each password on its stdin.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
MAX_NAME_LENGTH = 32  # MySQL 8's limit for user names; PostgreSQL allows 63 bytes

# What PgBouncer runs (with `auth_user = <pooler account>` and `auth_dbname = postgres`).
PGBOUNCER_AUTH_QUERY = "SELECT username, password FROM pgbouncer.get_auth($1)"

_PG_RESERVED_ROLES = frozenset({"postgres", "public", "none", "current_user", "current_role", "session_user"})
_PG_RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
_MYSQL_RESERVED_USERS = frozenset({"root", "mysql", "mariadb"})
_MYSQL_RESERVED_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema"})
_MONGO_RESERVED_DATABASES = frozenset({"admin", "local", "config"})
_REDIS_RESERVED_USERS = frozenset({"default"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class AccountKind(StrEnum):
    APP = "app"  # a client: everything on its own database, nothing elsewhere
    MONITOR = "monitor"  # metrics collection: server-wide statistics, read-only, no database


@dataclass(frozen=True)
class Account:
    """One client's account on one data service. The password never shows in repr()."""

    name: str
    password: str = field(repr=False)
    database: str | None = None  # the client's own database (created, owned by it); APP only
    kind: AccountKind = AccountKind.APP

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AccountKind(self.kind))  # "monitor" works too; typos do not
        validate_name(self.name, "account name")
        if self.database is not None:
            validate_name(self.database, f"database of account {self.name!r}")
            if self.kind is not AccountKind.APP:
                raise ValueError(f"account {self.name!r}: a {self.kind} account has no database of its own")
        if not self.password:
            raise ValueError(f"account {self.name!r}: empty password")
        if "\x00" in self.password:
            raise ValueError(f"account {self.name!r}: the password contains a NUL character")


class RedisRole(StrEnum):
    APP = "app"  # data commands on its own keys (<name>:*) and channels only
    EXPORTER = "exporter"  # read-only monitoring as redis_exporter needs it; no data access


@dataclass(frozen=True)
class RedisUser:
    """A Redis ACL user, known by the SHA-256 verifier of its password only."""

    name: str
    password_sha256: str = field(repr=False)
    role: RedisRole = RedisRole.APP

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", RedisRole(self.role))
        validate_name(self.name, "Redis user name")
        if self.name in _REDIS_RESERVED_USERS:
            raise ValueError(f"Redis user name {self.name!r} is reserved (the default user is the admin)")
        _check_sha256(self.password_sha256, f"Redis user {self.name!r}")

    @classmethod
    def with_password(cls, name: str, password: str, role: RedisRole = RedisRole.APP) -> RedisUser:
        if not password:
            raise ValueError(f"Redis user {name!r}: empty password")
        return cls(name, sha256_hex(password), role)


def validate_name(name: str, what: str = "name") -> str:
    """An account or database name: lowercase letter first, then [a-z0-9_-], at most 32 characters."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{what} must match [a-z][a-z0-9_-]*, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} must have at most {MAX_NAME_LENGTH} characters, got {name!r}")
    return name


def sha256_hex(password: str) -> str:
    """The verifier Redis ACLs accept after `#`: SHA-256 of the UTF-8 password, lowercase hex."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def _check_sha256(value: str, what: str) -> None:
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{what}: expected a SHA-256 verifier (64 lowercase hex digits)")


def _check_unique(accounts: Sequence[Account]) -> None:
    names: set[str] = set()
    databases: set[str] = set()
    for account in accounts:
        if account.name in names:
            raise ValueError(f"account {account.name!r} is listed twice")
        names.add(account.name)
        if account.database is not None:
            if account.database in databases:
                raise ValueError(f"database {account.database!r} is claimed by two accounts")
            databases.add(account.database)


def _check_reserved(accounts: Iterable[Account], roles: frozenset[str], databases: frozenset[str], server: str) -> None:
    for account in accounts:
        if account.name in roles or (server == "PostgreSQL" and account.name.startswith("pg_")):
            raise ValueError(f"{server}: account name {account.name!r} is reserved")
        if account.database is not None and account.database in databases:
            raise ValueError(f"{server}: database name {account.database!r} is reserved")


# --- PostgreSQL -------------------------------------------------------------------------------


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


def postgres_setup_sql(accounts: Sequence[Account], pgbouncer_auth_user: str | None = None) -> str:
    """A psql script (run as the admin, in the `postgres` database) that sets up every account.

    APP: a LOGIN role (SCRAM password), and if it has a database, that database owned by it with
    CONNECT and TEMPORARY revoked from PUBLIC (other roles cannot connect).
    MONITOR: a LOGIN role in pg_monitor, read-only by default, CONNECT on `postgres`.
    `pgbouncer_auth_user` names an APP account without a database: it may connect to `postgres`
    and is the only role that may EXECUTE pgbouncer.get_auth(text), a SECURITY DEFINER lookup
    of a role's SCRAM verifier (never a superuser's) for PgBouncer's auth_query. Without it the
    function is dropped.
    """
    _check_unique(accounts)
    _check_reserved(accounts, _PG_RESERVED_ROLES, _PG_RESERVED_DATABASES, "PostgreSQL")
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
        out += _pg_account(account)
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


def _gexec_if(statement: str, condition: str) -> str:
    """Run `statement` only when `condition` holds (psql's \\gexec runs what the query returns)."""
    return f"SELECT {pg_literal(statement)} WHERE {condition} \\gexec"


def _pg_account(account: Account) -> list[str]:
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
        f"ALTER ROLE {role} WITH {_PG_LOGIN} PASSWORD {pg_literal(account.password)};",
    ]
    if is_monitor:
        lines += [
            _gexec_if(f"GRANT pg_monitor TO {role}", f"NOT {in_pg_monitor}"),
            f"ALTER ROLE {role} SET default_transaction_read_only = on;",
            f"GRANT CONNECT ON DATABASE postgres TO {role};",
        ]
    else:
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


# --- MySQL 8 / MariaDB ------------------------------------------------------------------------


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
    _check_unique(accounts)
    _check_reserved(accounts, _MYSQL_RESERVED_USERS, _MYSQL_RESERVED_DATABASES, "MySQL")
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


# --- Redis 7 ACL ------------------------------------------------------------------------------

# What a metrics exporter (oliver006/redis_exporter, default flags) calls; no key or channel access.
_REDIS_EXPORTER_RULES = (
    "resetkeys resetchannels -@all"
    " +auth +hello +ping +echo +select +quit"
    " +info +config|get +client|list +client|info +client|id"
    " +cluster|info +cluster|nodes +cluster|myid"
    " +slowlog|get +slowlog|len +latency|latest +latency|histogram"
)

# Data commands on the client's own keys and channels; cluster topology for cluster clients; no
# @admin or @dangerous command (KEYS, FLUSH*, CONFIG, DEBUG, SORT, MIGRATE, CLIENT KILL, INFO, ...)
# and nothing that changes server-wide state (FUNCTION LOAD/DELETE/FLUSH, SCRIPT FLUSH/KILL).
_REDIS_APP_CATEGORIES = (
    "-@all +@read +@write +@keyspace +@string +@hash +@list +@set +@sortedset +@stream +@bitmap"
    " +@hyperloglog +@geo +@blocking +@transaction +@pubsub +@scripting +@connection"
    " +cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|myid +cluster|keyslot"
    " -@admin -@dangerous -function -script|flush -script|kill -script|debug -randomkey"
)


def redis_acl_lines(admin_password_sha256: str, users: Sequence[RedisUser]) -> list[str]:
    """`user` lines for a Redis node's config: the admin as `default`, then one line per client.

    Only SHA-256 verifiers (`#<hex>`) appear, so the config holds no plaintext password.
    EXPORTER: INFO, PING, CONFIG GET, CLIENT LIST, CLUSTER INFO/NODES, SLOWLOG, LATENCY and the
    connection commands; no key, no channel, no write. APP: data commands on keys and channels
    `<name>:*` only.
    """
    _check_sha256(admin_password_sha256, "Redis admin password")
    names: set[str] = set()
    lines = [f"user default on #{admin_password_sha256} ~* &* +@all"]
    for user in users:
        if user.name in names:
            raise ValueError(f"Redis user {user.name!r} is listed twice")
        names.add(user.name)
        verifier = f"#{user.password_sha256}"
        if user.role is RedisRole.EXPORTER:
            lines.append(f"user {user.name} reset on {verifier} {_REDIS_EXPORTER_RULES}")
        else:
            scope = f"resetkeys ~{user.name}:* resetchannels &{user.name}:*"
            lines.append(f"user {user.name} reset on {verifier} {scope} {_REDIS_APP_CATEGORIES}")
    return lines


# --- MongoDB ----------------------------------------------------------------------------------

# One line on purpose: mongosh reads stdin like its REPL, and a single statement is evaluated as
# a whole; any failure ends the shell with status 1. No `//` comments (they would end the line).
_MONGO_TEMPLATE = """
try {
  const spec = __SPEC__;
  db.getSiblingDB("admin").auth(spec.admin.user, spec.admin.pwd);
  for (const a of spec.accounts) {
    const target = db.getSiblingDB(a.db);
    const update = { pwd: a.pwd, roles: a.roles, mechanisms: ["SCRAM-SHA-256"] };
    if (target.getUser(a.user) === null) {
      target.createUser(Object.assign({ user: a.user }, update));
      print("devstack: created MongoDB user " + a.user + " in " + a.db);
    } else {
      target.updateUser(a.user, update);
      print("devstack: updated MongoDB user " + a.user + " in " + a.db);
    }
  }
} catch (e) {
  print("devstack: MongoDB accounts failed: " + (e && e.message ? e.message : e));
  quit(1);
}
"""


def mongo_user_database(account: Account) -> str:
    """Where the account's user is defined (its authSource): an app's own database, else admin."""
    return account.database if account.database is not None else "admin"


def mongo_roles(account: Account) -> list[dict[str, str]]:
    if account.kind is AccountKind.MONITOR:
        return [{"role": "clusterMonitor", "db": "admin"}, {"role": "read", "db": "local"}]
    if account.database is None:
        raise ValueError(f"MongoDB: app account {account.name!r} needs a database")
    return [{"role": "readWrite", "db": account.database}]


def mongo_setup_js(admin_user: str, admin_password: str, accounts: Sequence[Account]) -> str:
    """A mongosh script that logs in as the admin (credentials inside the script, i.e. on stdin)
    and creates or updates every user (SCRAM-SHA-256): APP gets readWrite on its own database and
    is defined there; MONITOR gets clusterMonitor and read on `local`, defined in admin.
    """
    if not admin_user or not admin_password:
        raise ValueError("MongoDB: the admin user and password must not be empty")
    for account in accounts:
        if account.name == admin_user and mongo_user_database(account) == "admin":
            raise ValueError(f"MongoDB: account {account.name!r} would replace the admin user")
    _check_unique(accounts)
    _check_reserved(accounts, frozenset(), _MONGO_RESERVED_DATABASES, "MongoDB")
    spec = {
        "admin": {"user": admin_user, "pwd": admin_password},
        "accounts": [
            {"user": a.name, "pwd": a.password, "db": mongo_user_database(a), "roles": mongo_roles(a)} for a in accounts
        ],
    }
    # JSON is a JavaScript literal; ensure_ascii keeps the script ASCII (U+2028/9 escaped too).
    encoded = json.dumps(spec, ensure_ascii=True, separators=(",", ":"))
    body = " ".join(line.strip() for line in _MONGO_TEMPLATE.strip().splitlines())
    return body.replace("__SPEC__", encoded) + "\n"


# --- RabbitMQ ---------------------------------------------------------------------------------

_SH_SAFE = re.compile(r"[A-Za-z0-9_./:=@%+-]+")


def sh_quote(value: str) -> str:
    """A POSIX sh single-quoted word."""
    if _SH_SAFE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def _heredoc(password: str) -> tuple[str, str]:
    delimiter = "DEVSTACK_PASSWORD_END"
    while delimiter == password:
        delimiter += "_"
    return f"<<'{delimiter}'", f"{password}\n{delimiter}"


def rabbitmq_setup_sh(accounts: Sequence[Account], vhost: str = "/") -> str:
    """A POSIX sh script (run in the RabbitMQ container) that sets up every account on `vhost`.

    Passwords reach rabbitmqctl through here-documents on its stdin (add_user/change_password
    read the password from stdin when it is omitted), never through argv. APP: no tags,
    configure/write/read on resources named `<name>.*` or `<name>:*` and server-named queues
    (amq.gen-*), plus publishing through the default exchange. MONITOR: the `monitoring` tag and
    no resource permission. rabbitmqctl trims the password it reads, so leading or trailing
    whitespace and line breaks are rejected.
    """
    _check_unique(accounts)
    if vhost != "/":
        validate_name(vhost, "RabbitMQ vhost")
    for account in accounts:
        password = account.password
        if password != password.strip() or "\n" in password or "\r" in password:
            raise ValueError(f"RabbitMQ: the password of {account.name!r} has surrounding whitespace or a line break")
    if any(a.database is not None for a in accounts):
        raise ValueError("RabbitMQ: accounts have no database (they share the vhost)")

    out = [
        "#!/bin/sh",
        "# devstack: RabbitMQ accounts (generated; idempotent, safe to re-run)",
        "set -eu",
        f"vhost={sh_quote(vhost)}",
        "# The script itself may be this shell's stdin (`sh -s`): a command that does not get a",
        "# here-document reads /dev/null, so it cannot swallow the rest of the script.",
        'if ! rabbitmqctl --silent list_vhosts name </dev/null | grep -Fqx -- "$vhost"; then',
        '    rabbitmqctl --silent add_vhost "$vhost" </dev/null',
        "fi",
        "listing=$(rabbitmqctl --silent list_users </dev/null)",
        "user_tags() {  # status 1 if the user does not exist",
        """    printf '%s\\n' "$listing" | awk -F '\\t' -v u="$1" '$1 == u {print $2; f = 1} END {exit !f}'""",
        "}",
    ]
    names = " ".join(sh_quote(a.name) for a in accounts)
    if accounts:
        out += [
            "# a client account never takes over an administrator (such as the admin's own login)",
            f"for name in {names}; do",
            '    if user_tags "$name" | grep -q administrator; then',
            '        echo "devstack: refusing to change administrator $name" >&2',
            "        exit 1",
            "    fi",
            "done",
        ]
    for account in accounts:
        name = sh_quote(account.name)
        redirect, body = _heredoc(account.password)
        out += [
            "",
            f"# {account.kind} account {account.name}",
            f"if user_tags {name} >/dev/null; then",
            f"    rabbitmqctl --silent change_password {name} {redirect}",
            body,
            "else",
            f"    rabbitmqctl --silent add_user {name} {redirect}",
            body,
            "fi",
        ]
        if account.kind is AccountKind.MONITOR:
            out += [
                f"rabbitmqctl --silent set_user_tags {name} monitoring </dev/null",
                f"rabbitmqctl --silent set_permissions -p \"$vhost\" {name} '^$' '^$' '^$' </dev/null",
            ]
        else:
            # names are [a-z0-9_-]: no regex metacharacter to escape
            own = f"^({account.name}[.:].*|amq\\.gen-.*)$"
            write = f"^({account.name}[.:].*|amq\\.gen-.*|amq\\.default)$"
            out += [
                f"rabbitmqctl --silent set_user_tags {name} </dev/null",
                f'rabbitmqctl --silent set_permissions -p "$vhost" {name}'
                f" {sh_quote(own)} {sh_quote(write)} {sh_quote(own)} </dev/null",
            ]
    return "\n".join(out) + "\n"
