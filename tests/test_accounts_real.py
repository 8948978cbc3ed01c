"""The generated account scripts against real servers: PostgreSQL, MariaDB and Redis on 127.0.0.1.

Each server starts once per session in a temporary directory (tests/realservers.py). Scripts go
through the real CLIs on stdin, as `pulumi up` runs them: first with one set of passwords, again
unchanged, then with new passwords; the tests check the state after the last run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.accounts import Account, AccountKind
from devstack.services.mysql import mysql_setup_sql
from devstack.services.postgres import PGBOUNCER_AUTH_QUERY, postgres_setup_sql
from devstack.services.redis import RedisRole, RedisUser, redis_acl_lines, sha256_hex
from tests.realservers import (
    MariaDb,
    Postgres,
    Redis,
    RedisError,
    ServerUnavailableError,
)
from tests.shipped import scratch, shipped, start_mariadb, start_postgres, start_redis

pytestmark = pytest.mark.real

# Quotes, backslashes, dollar signs, psql variable syntax, SQL comment and statement ends.
TRICKY = "it's \"q\" \\ $1 $$ :v :'v' ;-- \\gexec %s _%"


@dataclass(frozen=True)
class Applied:
    """The accounts as the last run set them, and the passwords they had before."""

    accounts: dict[str, Account]
    old_passwords: dict[str, str]


def _accounts(generation: int, specs: list[tuple[str, str | None, AccountKind]]) -> dict[str, Account]:
    return {name: Account(name, f"{TRICKY} {name} v{generation}", database, kind) for name, database, kind in specs}


# --- PostgreSQL -------------------------------------------------------------------------------

PG_SPECS: list[tuple[str, str | None, AccountKind]] = [
    ("forgejo", "forgejo", AccountKind.APP),
    ("reference-api", "reference_api", AccountKind.APP),
    ("vector", None, AccountKind.MONITOR),
    ("pgbouncer", None, AccountKind.APP),
]


# The servers run the plan's phase-0 containers (tests/shipped.py); the accounts are the tests'.
PLAN = ("phase=0", "profiles=standard")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        with scratch(shipped("postgres", *PLAN)) as s, start_postgres(s, accounts=False) as server:
            yield server
    except ServerUnavailableError as missing:
        pytest.skip(f"PostgreSQL missing ({missing}): apt-get install postgresql")


@pytest.fixture(scope="session")
def pg_applied(postgres: Postgres) -> Applied:
    first = _accounts(1, PG_SPECS)
    for run, accounts in enumerate((first, first, _accounts(2, PG_SPECS))):
        result = postgres.apply(postgres_setup_sql(list(accounts.values()), "pgbouncer"))
        assert result.returncode == 0, result.stderr
        assert "ERROR" not in result.stderr
        if run == 0:  # created: the first passwords work
            for account in accounts.values():
                assert _pg(postgres, account, "SELECT 1") == (True, "1"), account.name
    return Applied(_accounts(2, PG_SPECS), {n: a.password for n, a in first.items()})


def _pg(postgres: Postgres, account: Account, sql: str, database: str | None = None) -> tuple[bool, str]:
    result = postgres.query(sql, user=account.name, password=account.password, database=database or "postgres")
    return result.returncode == 0, (result.stdout if result.returncode == 0 else result.stderr).strip()


def test_pg_app_logs_in_with_new_password_and_uses_own_database(postgres: Postgres, pg_applied: Applied) -> None:
    forgejo = pg_applied.accounts["forgejo"]
    ok, out = _pg(
        postgres,
        forgejo,
        "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (42); SELECT sum(x) > 0 FROM t;",
        "forgejo",
    )
    assert ok, out
    assert out.endswith("t")
    owner = postgres.admin_query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'forgejo'")
    assert owner == "forgejo"


def test_pg_old_password_is_rejected(postgres: Postgres, pg_applied: Applied) -> None:
    for name, old in pg_applied.old_passwords.items():
        stale = Account(name, old)
        ok, out = _pg(postgres, stale, "SELECT 1")
        assert not ok
        assert "password authentication failed" in out


def test_pg_password_is_a_scram_verifier_of_the_new_password(postgres: Postgres, pg_applied: Applied) -> None:
    for account in pg_applied.accounts.values():
        stored = postgres.admin_query(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{account.name}'")
        assert _scram_matches(stored, account.password), account.name


def test_pg_app_cannot_connect_to_another_clients_database(postgres: Postgres, pg_applied: Applied) -> None:
    api = pg_applied.accounts["reference-api"]
    ok, out = _pg(postgres, api, "SELECT 1", "forgejo")
    assert not ok
    assert "permission denied for database" in out
    ok, _ = _pg(postgres, api, "SELECT 1", "reference_api")
    assert ok


def test_pg_app_has_no_server_privileges(postgres: Postgres, pg_applied: Applied) -> None:
    ok, out = _pg(postgres, pg_applied.accounts["forgejo"], "CREATE DATABASE sneaky")
    assert not ok
    assert "permission denied" in out
    ok, out = _pg(postgres, pg_applied.accounts["forgejo"], "CREATE TABLE public.t (x int)")
    assert not ok, "apps must not create objects in the postgres database"


def test_pg_monitor_reads_statistics_but_cannot_write(postgres: Postgres, pg_applied: Applied) -> None:
    vector = pg_applied.accounts["vector"]
    ok, out = _pg(postgres, vector, "SELECT count(*) > 0, pg_has_role('pg_monitor', 'USAGE') FROM pg_stat_activity")
    assert ok, out
    assert out == "t|t"
    for statement in ("CREATE TABLE vector_t (x int)", "CREATE TEMP TABLE vector_t (x int)"):
        ok, out = _pg(postgres, vector, statement)
        assert not ok, statement
    ok, out = _pg(postgres, vector, "SELECT 1", "forgejo")
    assert not ok
    assert "permission denied for database" in out


def test_pgbouncer_auth_query_returns_the_scram_verifier(postgres: Postgres, pg_applied: Applied) -> None:
    pooler = pg_applied.accounts["pgbouncer"]
    forgejo = pg_applied.accounts["forgejo"]
    ok, out = _pg(postgres, pooler, PGBOUNCER_AUTH_QUERY.replace("$1", "'forgejo'"))
    assert ok, out
    username, verifier = out.split("|", 1)
    assert username == "forgejo"
    assert verifier.startswith("SCRAM-SHA-256$")
    assert _scram_matches(verifier, forgejo.password)
    # never a superuser's verifier, nothing for unknown roles
    for role in (postgres.admin, "nobody-here"):
        ok, out = _pg(postgres, pooler, PGBOUNCER_AUTH_QUERY.replace("$1", f"'{role}'"))
        assert ok, out
        assert out == ""


def test_pgbouncer_auth_function_is_not_executable_by_other_roles(postgres: Postgres, pg_applied: Applied) -> None:
    for name in ("forgejo", "vector", "reference-api"):
        ok, out = _pg(postgres, pg_applied.accounts[name], PGBOUNCER_AUTH_QUERY.replace("$1", "'forgejo'"))
        assert not ok, name
        assert "permission denied" in out
    assert postgres.admin_query(
        "SELECT string_agg(grantee, ',' ORDER BY grantee) FROM information_schema.routine_privileges"
        " WHERE routine_schema = 'pgbouncer' AND routine_name = 'get_auth'"
        f" AND grantee <> '{postgres.admin}'"  # the owner: the image's admin
    ) == ("pgbouncer")


def test_pg_dropping_the_auth_user_drops_the_function(postgres: Postgres, pg_applied: Applied) -> None:
    accounts = list(pg_applied.accounts.values())
    try:
        result = postgres.apply(postgres_setup_sql(accounts, None))
        assert result.returncode == 0, result.stderr
        assert postgres.admin_query("SELECT to_regprocedure('pgbouncer.get_auth(text)') IS NULL") == "t"
    finally:
        result = postgres.apply(postgres_setup_sql(accounts, "pgbouncer"))
        assert result.returncode == 0, result.stderr


def test_pg_script_never_demotes_a_superuser(postgres: Postgres, pg_applied: Applied) -> None:
    postgres.admin_query("CREATE ROLE boss SUPERUSER LOGIN")
    try:
        result = postgres.apply(postgres_setup_sql([*pg_applied.accounts.values(), Account("boss", "x")], "pgbouncer"))
        assert result.returncode != 0
        assert "has the name of a superuser role" in result.stderr
        assert postgres.admin_query("SELECT rolsuper FROM pg_roles WHERE rolname = 'boss'") == "t"
    finally:
        postgres.admin_query("DROP ROLE boss")


def test_pg_script_refuses_another_database(postgres: Postgres, pg_applied: Applied) -> None:
    script = postgres_setup_sql(list(pg_applied.accounts.values()), "pgbouncer")
    result = postgres.apply("\\connect template1\n" + script)
    assert result.returncode != 0
    assert "run the accounts script in the postgres database" in result.stderr


def _scram_matches(stored: str, password: str) -> bool:
    """Check a PostgreSQL SCRAM-SHA-256 verifier against a password (ASCII: SASLprep is identity)."""
    mechanism, rest = stored.split("$", 1)
    assert mechanism == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$", 1)
    iterations, salt = iterations_salt.split(":", 1)
    stored_key = keys.split(":", 1)[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))


# --- MariaDB (MySQL account statements) --------------------------------------------------------

MY_SPECS: list[tuple[str, str | None, AccountKind]] = [
    ("reference-api", "reference_api", AccountKind.APP),
    ("golang-api", "golang_api", AccountKind.APP),
    ("exporter", None, AccountKind.MONITOR),
]


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDb]:
    try:
        with scratch(shipped("mysql", *PLAN)) as s, start_mariadb(s, accounts=False) as server:
            yield server
    except ServerUnavailableError as missing:
        pytest.skip(f"MariaDB missing ({missing}): apt-get install mariadb-server")


@pytest.fixture(scope="session")
def my_applied(mariadb: MariaDb) -> Applied:
    # A database whose name matches reference_api's when `_` is a wildcard: must stay out of reach.
    setup = mariadb.apply("CREATE DATABASE IF NOT EXISTS referenceXapi; CREATE TABLE referenceXapi.t (x int);")
    assert setup.returncode == 0, setup.stderr
    first = _accounts(1, MY_SPECS)
    for run, accounts in enumerate((first, first, _accounts(2, MY_SPECS))):
        result = mariadb.apply(mysql_setup_sql(list(accounts.values())))
        assert result.returncode == 0, result.stderr
        if run == 0:  # created: the first passwords work
            for account in accounts.values():
                assert _my(mariadb, account, "SELECT 1") == (True, "1"), account.name
    return Applied(_accounts(2, MY_SPECS), {n: a.password for n, a in first.items()})


def _my(mariadb: MariaDb, account: Account, sql: str, database: str | None = None) -> tuple[bool, str]:
    result = mariadb.query(sql, user=account.name, password=account.password, database=database)
    return result.returncode == 0, (result.stdout if result.returncode == 0 else result.stderr).strip()


def test_mysql_app_logs_in_over_tcp_and_uses_own_database(mariadb: MariaDb, my_applied: Applied) -> None:
    api = my_applied.accounts["reference-api"]
    ok, out = _my(
        mariadb,
        api,
        "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (7); SELECT sum(x) > 0 FROM t;",
        "reference_api",
    )
    assert ok, out
    assert out == "1"


def test_mysql_old_password_is_rejected(mariadb: MariaDb, my_applied: Applied) -> None:
    for name, old in my_applied.old_passwords.items():
        ok, out = _my(mariadb, Account(name, old), "SELECT 1")
        assert not ok
        assert "Access denied" in out


def test_mysql_app_cannot_use_another_database(mariadb: MariaDb, my_applied: Applied) -> None:
    api = my_applied.accounts["reference-api"]
    for database in ("golang_api", "referenceXapi", "mysql"):
        ok, out = _my(mariadb, api, "SELECT 1", database)
        assert not ok, database
        assert "Access denied" in out
    ok, out = _my(mariadb, api, "SHOW DATABASES")
    assert ok, out
    assert set(out.split()) == {"information_schema", "reference_api"}


def test_mysql_monitor_sees_processes_but_no_data(mariadb: MariaDb, my_applied: Applied) -> None:
    exporter = my_applied.accounts["exporter"]
    ok, out = _my(
        mariadb, exporter, "SHOW GLOBAL STATUS LIKE 'Uptime'; SELECT COUNT(*) >= 0 FROM information_schema.PROCESSLIST"
    )
    assert ok, out
    ok, out = _my(mariadb, exporter, "SELECT COUNT(*) FROM performance_schema.threads")
    assert ok, out
    for statement, database in (("SELECT * FROM t", "reference_api"), ("CREATE DATABASE sneaky", None)):
        ok, out = _my(mariadb, exporter, statement, database)
        assert not ok, statement
        assert "denied" in out


# --- Redis ------------------------------------------------------------------------------------

REDIS_ADMIN = 'admin\'s \\ "pass" $x'
REDIS_APP = "app1 pass ' \" \\"
REDIS_EXPORTER = "exporter pass"


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    users = [
        RedisUser.with_password("app1", REDIS_APP),
        RedisUser.with_password("exporter", REDIS_EXPORTER, RedisRole.EXPORTER),
    ]
    acl = "\n".join(redis_acl_lines(sha256_hex(REDIS_ADMIN), users)) + "\n"
    # (DEBUG allowed at all, so that the ACLs, not Redis's default refusal, decide who may run it.)
    try:
        with (
            scratch(shipped("redis-1", "phase=0", "profiles=minimal"), secret_overrides={"users_acl": acl}) as s,
            start_redis(s, test_defaults=["enable-debug-command local"]),
        ):
            shipped_files = [s.host(u).read_text() for u in s.shipped.uploads if u.endswith(".conf")]
            yield Redis(s.port(6379), "\n".join([*shipped_files, acl]))
    except ServerUnavailableError as missing:
        pytest.skip(f"Redis missing ({missing}): apt-get install redis-server")


def _denied(reply: object) -> bool:
    # NOPERM, or from inside a script: "ERR The user executing the script can't access ..."
    return isinstance(reply, RedisError) and (
        str(reply).startswith("NOPERM") or "user executing the script can't" in str(reply)
    )


def _allowed(reply: object) -> bool:
    return not (isinstance(reply, RedisError) and str(reply).startswith(("NOPERM", "NOAUTH", "WRONGPASS")))


def test_redis_config_holds_no_plaintext_password(redis: Redis) -> None:
    for password in (REDIS_ADMIN, REDIS_APP, REDIS_EXPORTER):
        assert password not in redis.config_text
    assert sha256_hex(REDIS_APP) in redis.config_text


def test_redis_requires_authentication_and_rejects_wrong_passwords(redis: Redis) -> None:
    with redis.connect() as conn:
        reply = conn.call("GET", "app1:k")
        assert isinstance(reply, RedisError)
        assert str(reply).startswith("NOAUTH")
        for user, password in (("default", "wrong"), ("app1", REDIS_EXPORTER), ("exporter", REDIS_APP)):
            reply = conn.call("AUTH", user, password)
            assert isinstance(reply, RedisError), user
            assert str(reply).startswith("WRONGPASS")
        assert str(conn.call("AUTH", "wrong")).startswith("WRONGPASS")


def test_redis_admin_can_do_everything(redis: Redis) -> None:
    with redis.connect() as conn:
        assert conn.call("AUTH", REDIS_ADMIN) == "OK"  # the default user, like requirepass
        assert conn.call("SET", "other:k", "v") == "OK"
        assert conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction") == "OK"
        assert isinstance(conn.call("KEYS", "*"), list)
        assert conn.call("AUTH", "default", REDIS_ADMIN) == "OK"
        assert conn.call("ACL", "WHOAMI") == b"default"


def test_redis_exporter_reads_server_state_only(redis: Redis) -> None:
    with redis.connect() as conn:
        assert conn.call("AUTH", "exporter", REDIS_EXPORTER) == "OK"
        assert conn.call("PING") == "PONG"
        for command in (
            ("INFO", "all"),
            ("CONFIG", "GET", "maxmemory"),
            ("CLIENT", "LIST"),
            ("SLOWLOG", "GET", "10"),
            ("SLOWLOG", "LEN"),
            ("LATENCY", "LATEST"),
            ("SELECT", "0"),
            ("CLUSTER", "INFO"),  # "cluster support disabled" here, but permitted
            ("CLUSTER", "NODES"),
            ("HELLO", "2"),
        ):
            assert _allowed(conn.call(*command)), command
        for command in (
            ("SET", "app1:k", "v"),
            ("GET", "app1:k"),
            ("FLUSHALL",),
            ("FLUSHDB",),
            ("CONFIG", "SET", "maxmemory", "1"),
            ("KEYS", "*"),
            ("DEBUG", "SLEEP", "0"),
            ("CLIENT", "KILL", "ID", "1"),
            ("ACL", "LIST"),
            ("SHUTDOWN",),
            ("PUBLISH", "app1:c", "m"),
        ):
            assert _denied(conn.call(*command)), command


def test_redis_app_uses_own_keys_only(redis: Redis) -> None:
    with redis.connect() as conn:
        assert conn.call("AUTH", "app1", REDIS_APP) == "OK"
        assert conn.call("SET", "app1:k", "v") == "OK"
        assert conn.call("GET", "app1:k") == b"v"
        assert conn.call("HSET", "app1:h", "f", "1") == 1
        assert conn.call("EVAL", "return redis.call('GET', KEYS[1])", "1", "app1:k") == b"v"
        assert conn.call("PUBLISH", "app1:c", "m") == 0
        assert _allowed(conn.call("CLUSTER", "SLOTS"))  # what cluster clients ask first
        assert conn.call("MULTI") == "OK"
        assert conn.call("INCR", "app1:n") == "QUEUED"
        assert conn.call("EXEC") == [1]
        for command in (
            ("GET", "other:k"),
            ("SET", "app2:k", "v"),
            ("GET", "app1"),  # the prefix includes the colon
            ("RENAME", "app1:k", "other:k"),
            ("EVAL", "return redis.call('GET', 'other:k')", "0"),
            ("PUBLISH", "other", "m"),
            ("KEYS", "*"),
            ("FLUSHALL",),
            ("FLUSHDB",),
            ("INFO",),
            ("CONFIG", "GET", "*"),
            ("CONFIG", "SET", "maxmemory", "1"),
            ("DEBUG", "SLEEP", "0"),
            ("CLIENT", "LIST"),
            ("SHUTDOWN",),
            ("FUNCTION", "FLUSH"),
            ("SCRIPT", "FLUSH"),
            ("RANDOMKEY",),
            ("ACL", "SETUSER", "app1", "+@all"),
        ):
            reply = conn.call(*command)
            assert _denied(reply), (command, reply)
