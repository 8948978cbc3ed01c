"""Real PostgreSQL, PgBouncer (in front of PostgreSQL), MariaDB and Redis on 127.0.0.1, each
started with exactly the files, arguments and secrets its container gets in the plan
(tests/shipped.py), at phase 0 (no TLS), 1 (TLS beside plaintext) and 4 (TLS required).

What is proven by behaviour: a client logs in with its own password and is refused without one,
with a wrong one and with another client's; plaintext is refused on the ports the plan publishes
once TLS is required (and accepted before); TLS 1.1 and CBC suites are attempted and refused;
PgBouncer looks clients up with its auth_query (they are not in its auth_file); Redis's ACL file
and protected mode are in force."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.phases import TlsMode
from devstack.tls import CA_FILE
from tests import netns, tlsprobe
from tests.realservers import (
    LOCALHOST,
    MariaDb,
    Postgres,
    RedisError,
    RespConnection,
    ServerUnavailableError,
    _clean_env,
)
from tests.shipped import (
    Scratch,
    listening,
    scratch,
    shipped,
    start_mariadb,
    start_pgbouncer,
    start_postgres,
    start_redis,
    vault_secrets,
)

pytestmark = pytest.mark.real

PHASES = [0, 1, 4]  # TLS off, dual, required
TLS_DIR = "/devstack/tls"
PACKAGES = {
    "postgres": "postgresql",
    "psql": "postgresql-client",
    "pgbouncer": "pgbouncer",
    "mariadbd": "mariadb-server",
    "mariadb": "mariadb-client",
    "redis-server": "redis-server",
}


def _need(*binaries: str) -> None:
    for binary in binaries:
        found = shutil.which(binary, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
        if binary == "postgres":
            found = found or next(iter(Path("/usr/lib/postgresql").glob("*/bin/postgres")), None)
        if found is None:
            pytest.skip(f"{binary} missing: apt-get install {PACKAGES[binary]} (listed in .ci/apt-packages)")


def _overrides(phase: int, profiles: str) -> tuple[str, ...]:
    return (f"phase={phase}", f"profiles={profiles}")


def _tls(s: Scratch) -> bool:
    return s.shipped.tls is not TlsMode.OFF


def _ca(s: Scratch) -> Path:
    return s.host(f"{TLS_DIR}/{CA_FILE}")


def _published(s: Scratch) -> list[int]:
    """The loopback ports standing for the host ports the plan publishes."""
    return [s.port(int(p["internal"])) for p in s.shipped.published]


def _required(s: Scratch) -> bool:
    return s.shipped.tls is TlsMode.REQUIRED


# --- PostgreSQL and PgBouncer -------------------------------------------------------------------

PG_PROFILES = "minimal,reference"  # postgres, pgbouncer and forgejo, plus the APIs as other clients


def _psql(
    port: int, user: str, password: str | None, database: str, *, sslmode: str, root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PGSSLMODE": sslmode, "PGCONNECT_TIMEOUT": "5", "PGPASSFILE": os.devnull}
    if password is not None:
        env["PGPASSWORD"] = password
    if root is not None:
        env["PGSSLROOTCERT"] = str(root)
    query = "SELECT current_user, coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)"
    args = ["-d", database, "-c", query]
    return subprocess.run(
        [shutil.which("psql") or "psql", "-X", "-w", "-qAt", "-h", LOCALHOST, "-p", str(port), "-U", user, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(env),
        check=False,
    )


@dataclass(frozen=True)
class Pg:
    scratch: Scratch
    server: Postgres


@pytest.fixture(scope="module", params=PHASES, ids=lambda p: f"phase{p}")
def pg(request: pytest.FixtureRequest) -> Iterator[Pg]:
    _need("postgres", "psql")
    with scratch(shipped("postgres", *_overrides(request.param, PG_PROFILES))) as s, start_postgres(s) as server:
        yield Pg(s, server)


def _client(
    pg_scratch: Scratch, port: int, user: str, password: str | None, database: str
) -> subprocess.CompletedProcess[str]:
    if _tls(pg_scratch):
        return _psql(port, user, password, database, sslmode="verify-full", root=_ca(pg_scratch))
    return _psql(port, user, password, database, sslmode="disable")


def _clients(overrides: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    secrets = vault_secrets(*overrides)
    return secrets["forgejo"], secrets["reference-api"]


def test_postgres_takes_each_client_with_its_own_password_only(pg: Pg) -> None:
    forgejo, other = _clients(pg.scratch.shipped.overrides)
    port, user = pg.server.port, forgejo["postgres_user"]
    own = _client(pg.scratch, port, user, forgejo["postgres_password"], user)
    assert own.returncode == 0, own.stderr
    assert own.stdout.split("|")[0] == user
    for password in (None, "wrong-password", other["postgres_password"]):
        attempt = _client(pg.scratch, port, user, password, user)
        assert attempt.returncode != 0, f"logged in with password {'none' if password is None else 'not its own'}"


def test_postgres_plaintext_on_its_published_port_until_tls_is_required(pg: Pg) -> None:
    forgejo, _ = _clients(pg.scratch.shipped.overrides)
    user, password = forgejo["postgres_user"], forgejo["postgres_password"]
    for port in _published(pg.scratch):
        plain = _psql(port, user, password, user, sslmode="disable")
        if _required(pg.scratch):
            assert plain.returncode != 0, f"plaintext accepted on published port {port} with TLS required"
            assert "no encryption" in plain.stderr, plain.stderr
        else:
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.strip().endswith("|f")


def test_postgres_refuses_weak_tls(pg: Pg) -> None:
    if not _tls(pg.scratch):
        with pytest.raises(ConnectionRefusedError):  # phase 0: the server does not offer TLS at all
            tlsprobe.handshake(pg.server.port, tlsprobe.postgres, tlsprobe.context(_system_cas()))
        return
    tlsprobe.weak_handshakes_refused(pg.server.port, tlsprobe.postgres, _ca(pg.scratch))


def _system_cas() -> Path:
    return Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Bouncer:
    postgres: Pg
    scratch: Scratch


@pytest.fixture(scope="module")
def bouncer(pg: Pg) -> Iterator[Bouncer]:
    _need("pgbouncer")
    item = shipped("pgbouncer", *pg.scratch.shipped.overrides)
    with scratch(item, peers={"postgres": pg.server.port}) as s, start_pgbouncer(s):
        yield Bouncer(pg, s)


def test_pgbouncer_looks_clients_up_with_its_auth_query(bouncer: Bouncer) -> None:
    forgejo, other = _clients(bouncer.scratch.shipped.overrides)
    user = forgejo["postgres_user"]
    auth_file = bouncer.scratch.host("/run/devstack/users_acl").read_text()
    assert f'"{user}"' not in auth_file  # so only the auth_query can know forgejo
    port = bouncer.scratch.port(5432)
    # The postgres database, where the plan's auth_dbname points the lookup (see shipped.py).
    own = _client(bouncer.scratch, port, user, forgejo["postgres_password"], "postgres")
    assert own.returncode == 0, own.stderr
    name, server_tls = own.stdout.strip().split("|")
    assert name == user
    # PgBouncer -> PostgreSQL: TLS whenever the plan has TLS (verify-full once required).
    assert server_tls == ("t" if _tls(bouncer.scratch) else "f")
    for password in (None, "wrong-password", other["postgres_password"]):
        attempt = _client(bouncer.scratch, port, user, password, "postgres")
        assert attempt.returncode != 0, f"PgBouncer let {user} in with a password not its own"


def test_pgbouncer_plaintext_on_its_published_port_until_tls_is_required(bouncer: Bouncer) -> None:
    forgejo, _ = _clients(bouncer.scratch.shipped.overrides)
    user = forgejo["postgres_user"]
    for port in _published(bouncer.scratch):
        plain = _psql(port, user, forgejo["postgres_password"], "postgres", sslmode="disable")
        if _required(bouncer.scratch):
            assert plain.returncode != 0, f"plaintext accepted on published port {port} with TLS required"
            assert "SSL required" in plain.stderr, plain.stderr
        else:
            assert plain.returncode == 0, plain.stderr


def test_pgbouncer_refuses_weak_tls(bouncer: Bouncer) -> None:
    if not _tls(bouncer.scratch):
        with pytest.raises(ConnectionRefusedError):  # phase 0: no TLS offered at all
            tlsprobe.handshake(bouncer.scratch.port(5432), tlsprobe.postgres, tlsprobe.context(_system_cas()))
        return
    tlsprobe.weak_handshakes_refused(bouncer.scratch.port(5432), tlsprobe.postgres, _ca(bouncer.scratch))


def test_pgbouncer_verifies_postgres_once_tls_is_required(bouncer: Bouncer) -> None:
    """The same PgBouncer trusting other CAs than the plan's gets no server connection once TLS
    is required (verify-full); before, it does not verify PostgreSQL at all (prefer, or none)."""
    item = bouncer.scratch.shipped
    with scratch(item, peers={"postgres": bouncer.postgres.server.port}) as s:
        if _tls(s):
            s.host(f"{TLS_DIR}/{CA_FILE}").write_text(_system_cas().read_text())
        with start_pgbouncer(s):
            forgejo, _ = _clients(item.overrides)
            user, password = forgejo["postgres_user"], forgejo["postgres_password"]
            sslmode = "require" if _tls(s) else "disable"  # (the client itself verifies nothing)
            attempt = _psql(s.port(5432), user, password, "postgres", sslmode=sslmode)
            if _required(s):
                assert attempt.returncode != 0
                assert "certificate verify failed" in (s.root / "server.log").read_text()
            else:
                assert attempt.returncode == 0, attempt.stderr


# --- MariaDB (the mysql container) ----------------------------------------------------------

MY_PROFILES = "standard,reference"


@pytest.fixture(scope="module", params=PHASES, ids=lambda p: f"phase{p}")
def mariadb(request: pytest.FixtureRequest) -> Iterator[tuple[Scratch, MariaDb]]:
    _need("mariadbd", "mariadb")
    try:
        with scratch(shipped("mysql", *_overrides(request.param, MY_PROFILES))) as s, start_mariadb(s) as server:
            yield s, server
    except ServerUnavailableError as error:
        pytest.skip(f"{error}: apt-get install mariadb-server")


def _mysql(s: Scratch, port: int, user: str, password: str | None, *tls: str) -> subprocess.CompletedProcess[str]:
    args = [shutil.which("mariadb") or "mariadb", "--no-defaults", "--protocol=TCP", "-h", LOCALHOST]
    args += ["-P", str(port), "-u", user, *tls, "--batch", "--skip-column-names", "--connect-timeout=5"]
    args += ["-e", "SELECT CURRENT_USER(); SHOW SESSION STATUS LIKE 'Ssl_version'"]
    if password is None:
        args.append("--skip-password")
    env = {} if password is None else {"MYSQL_PWD": password}
    return subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, env=_clean_env(env), check=False
    )


def _mysql_tls(s: Scratch) -> tuple[str, ...]:
    return (f"--ssl-ca={_ca(s)}", "--ssl-verify-server-cert") if _tls(s) else ("--skip-ssl",)


def test_mariadb_takes_each_client_with_its_own_password_only(mariadb: tuple[Scratch, MariaDb]) -> None:
    s, server = mariadb
    secrets = vault_secrets(*s.shipped.overrides)
    own, other = secrets["reference-api"], secrets["api-first"]
    user = own["mysql_user"]
    ok = _mysql(s, server.port, user, own["mysql_password"], *_mysql_tls(s))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split()[0] == f"{user}@%"
    for password in (None, "wrong-password", other["mysql_password"]):
        attempt = _mysql(s, server.port, user, password, *_mysql_tls(s))
        assert attempt.returncode != 0, f"MariaDB let {user} in with a password not its own"
        assert "ERROR 1045" in attempt.stderr, attempt.stderr


def test_mariadb_plaintext_on_its_published_port_until_tls_is_required(mariadb: tuple[Scratch, MariaDb]) -> None:
    s, _ = mariadb
    own = vault_secrets(*s.shipped.overrides)["reference-api"]
    for port in _published(s):
        plain = _mysql(s, port, own["mysql_user"], own["mysql_password"], "--skip-ssl")
        if _required(s):
            # MariaDB answers ERROR 1045 (MySQL 8.0: 3159) to a client without TLS.
            assert plain.returncode != 0, f"plaintext accepted on published port {port} with TLS required"
            assert "ERROR 1045" in plain.stderr or "ERROR 3159" in plain.stderr, plain.stderr
        else:
            assert plain.returncode == 0, plain.stderr


def test_mariadb_refuses_weak_tls(mariadb: tuple[Scratch, MariaDb]) -> None:
    s, server = mariadb
    assert tlsprobe.mysql_offers_tls(server.port) is _tls(s)
    if not _tls(s):
        return
    tlsprobe.weak_handshakes_refused(server.port, tlsprobe.mysql, _ca(s))
    # A client that trusts other CAs stops at the certificate, before any login.
    untrusted = _mysql(s, server.port, "x", "y", f"--ssl-ca={_system_cas()}", "--ssl-verify-server-cert")
    assert untrusted.returncode != 0
    assert "ERROR 1045" not in untrusted.stderr, untrusted.stderr


# --- Redis (redis-1 alone: standalone) ---------------------------------------------------------

REDIS_PROFILES = "minimal,reference"


# The phases, and phase 4 with its TLS mode set back to dual by a feature override.
REDIS_CASES = {f"phase{p}": (f"phase={p}",) for p in PHASES} | {"phase4-tls-dual": ("phase=4", "features=tls=dual")}


@pytest.fixture(scope="module", params=list(REDIS_CASES.values()), ids=list(REDIS_CASES))
def redis(request: pytest.FixtureRequest) -> Iterator[Scratch]:
    _need("redis-server")
    with scratch(shipped("redis-1", *request.param, f"profiles={REDIS_PROFILES}")) as s, start_redis(s):
        yield s


def _redis_port(s: Scratch) -> int:
    return s.port(6380) if _required(s) else s.port(6379)


def _redis(s: Scratch) -> RespConnection:
    """A client on the port the plan's clients use in this phase."""
    context = tlsprobe.context(_ca(s)) if _required(s) else None
    return RespConnection(_redis_port(s), context)


def test_redis_acl_file_refuses_all_but_the_right_password(redis: Scratch) -> None:
    secrets = vault_secrets(*redis.shipped.overrides)
    own, other = secrets["reference-api"], secrets["api-first"]
    user = own["redis_user"]
    with _redis(redis) as conn:
        reply = conn.call("PING")
        assert isinstance(reply, RedisError), f"an unauthenticated client got {reply!r}"
        assert str(reply).startswith("NOAUTH"), reply
        for password in ("wrong-password", other["redis_password"]):
            refused = conn.call("AUTH", user, password)
            assert isinstance(refused, RedisError), "logged in with a password not its own"
            assert str(refused).startswith("WRONGPASS"), refused
        assert conn.call("AUTH", user, own["redis_password"]) == "OK"
        assert conn.call("SET", f"{user}:probe", "1") == "OK"
        assert isinstance(conn.call("SET", "elsewhere", "1"), RedisError)  # its own keys only


def test_redis_protected_mode_is_on(redis: Scratch) -> None:
    with _redis(redis) as conn:
        assert conn.call("AUTH", redis.shipped.vault_secret["password"]) == "OK"
        assert conn.call("CONFIG", "GET", "protected-mode") == [b"protected-mode", b"yes"]


def test_redis_protected_mode_refuses_remote_clients_if_the_acl_file_is_lost() -> None:
    """Protected mode is the second lock: should the ACL file ever leave the default user without
    a password, Redis still refuses every client that is not local. Shown with the shipped
    redis.conf, a password-less default user, and a client in a network namespace of our own."""
    _need("redis-server")
    if (reason := netns.unavailable()) is not None:
        pytest.skip(reason)
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli missing: apt-get install redis-tools")
    item = shipped("redis-1", "phase=0", f"profiles={REDIS_PROFILES}")
    no_password = {"users_acl": "user default on nopass ~* &* +@all\n"}
    with contextlib.ExitStack() as stack:
        try:
            peer = stack.enter_context(netns.remote_peer())
        except netns.NetnsUnavailableError as error:
            pytest.skip(f"no network namespace here ({error})")
        listen = (LOCALHOST, peer.host_address)
        with scratch(item, secret_overrides=no_password, listen=listen) as s, start_redis(s):
            port = str(s.port(6379))
            with RespConnection(s.port(6379)) as local:
                assert local.call("PING") == "PONG"  # locally, no password asked: the lost ACL
            remote = peer.run(["redis-cli", "-h", peer.host_address, "-p", port, "ping"])
            answer = (remote.stdout + remote.stderr).strip()
            assert "PONG" not in answer, "a remote client got in without a password"
            assert "DENIED" in answer, answer


def test_redis_plaintext_on_its_published_ports_until_tls_is_required(redis: Scratch) -> None:
    for port in _published(redis):
        with RespConnection(port) as plain:
            try:
                reply = plain.call("PING")
            except (ConnectionError, OSError):
                reply = None
        if _required(redis):
            assert reply is None, f"plaintext answered {reply!r} on a port published at phase 4"
        elif port == redis.port(6379):
            assert isinstance(reply, RedisError), reply
            assert str(reply).startswith("NOAUTH"), reply
    # Once TLS is required no plaintext listener is left, published or not (other containers).
    left_open = listening(redis.port(6379))
    assert left_open is not _required(redis), f"plaintext listener {'left open' if left_open else 'missing'}"


def test_redis_refuses_weak_tls(redis: Scratch) -> None:
    if not _tls(redis):
        assert not listening(redis.port(6380))  # phase 0: no TLS port at all
        return
    tlsprobe.weak_handshakes_refused(redis.port(6380), tlsprobe.direct, _ca(redis))


def test_materialised_files_are_the_plans(redis: Scratch) -> None:
    """The fixture's own guard: every shipped file is there with its mode, and only the
    listed mappings changed its text."""
    for upload in redis.shipped.uploads.values():
        path = redis.host(upload.path)
        assert path.stat().st_mode & 0o777 == upload.mode, upload.path
        assert path.read_text() == redis.as_written(upload)
        if upload.path == "/devstack/entrypoint.sh" or "-----BEGIN " in upload.content:
            assert path.read_text() == upload.content
