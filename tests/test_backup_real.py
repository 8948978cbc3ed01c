"""Backup -> wipe -> restore through tools.backup against real servers, with the real restic.

The servers are the plan's phase-2 containers on 127.0.0.1 (tests/shipped.py): started with the
files the plan ships and its account step, which from the backups feature on creates the
management's backup and restore accounts; their passwords are the plan's secret/management.
tools.backup runs each store's own scripts (devstack.model.Backup) through a LocalExecutor: the
same `sh -c SCRIPT` users run through `docker exec -i <container>`, here a local process whose
environment says only where the loopback server listens (PGHOST/PGPORT, MYSQL_UNIX_PORT,
REDIS_PORT, and for rabbitmqctl the private node's name, epmd port and cookie directory). The
servers check the accounts' passwords (SCRAM over TCP, MariaDB's native auth on its socket,
Redis ACLs), so the scripts' password handling is exercised too.

Run with -s to see the measured backup and restore times.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devstack.backups import BACKUP_USER, RESTORE_USER
from devstack.services.mysql import BACKUP as MYSQL_BACKUP
from devstack.services.postgres import BACKUP as POSTGRES_BACKUP
from devstack.services.redis import BACKUP as REDIS_BACKUP
from tests.realservers import LOCALHOST, MariaDb, Postgres, RespConnection, ServerUnavailableError
from tests.shipped import scratch, shipped, start_mariadb, start_postgres, start_redis, vault_secrets
from tools.backup import MANIFEST, BackupError, LocalExecutor, Meta, Restic, Store, create, restore, verify

pytestmark = pytest.mark.real

PLAN = ("phase=2", "profiles=standard")
META = Meta("dev", 2, "test")
ROWS = 2000
T = TypeVar("T")


def _restic() -> str:
    found = shutil.which("restic")
    if found is None:
        pytest.skip("restic missing: apt-get install restic")
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Restic:
    key = tmp_path / "repo.key"
    return Restic(tmp_path / "repo", key, _restic())


def _passwords(system: str) -> dict[str, str]:
    management = vault_secrets(*PLAN)["management"]
    users = {"backup": BACKUP_USER, "restore": RESTORE_USER}
    return {
        user: management[f"{system}_{role}_password"]
        for role, user in users.items()
        if f"{system}_{role}_password" in management
    }


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.monotonic()
    result = action()
    print(f"\n{label}: {time.monotonic() - started:.2f} s")
    return result


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    try:
        with scratch(shipped("postgres", *PLAN)) as s, start_postgres(s) as server:
            yield server
    except ServerUnavailableError as missing:
        pytest.skip(f"PostgreSQL missing ({missing}): apt-get install postgresql")


def _pg_store(server: Postgres) -> Store:
    # PGDATA: where restore's room check (Backup.free) looks, as the image's PGDATA says in the container
    where = {"PGHOST": LOCALHOST, "PGPORT": str(server.port), "PGCONNECT_TIMEOUT": "5", "PGDATA": str(pgdata(server))}
    executor = LocalExecutor(where)
    return Store("postgres", POSTGRES_BACKUP, executor, _passwords("postgres"))


def pgdata(server: Postgres) -> Path:
    return server.socket_dir / "pgdata"  # tests/shipped.start_postgres: the socket in the root, data beside


def _pg_seed(server: Postgres) -> None:
    server.apply(
        "\\c forgejo\nSET ROLE forgejo;\n"
        "CREATE TABLE repo (id int PRIMARY KEY, name text, body bytea);\n"
        f"INSERT INTO repo SELECT i, 'r' || i, sha256(i::text::bytea) FROM generate_series(1, {ROWS}) AS i;\n"
        "CREATE TABLE issue (id bigserial PRIMARY KEY, repo int REFERENCES repo, title text);\n"
        "INSERT INTO issue (repo, title) SELECT i % 50 + 1, 'it''s \"#' || i FROM generate_series(1, 300) AS i;\n"
    )


def _pg_state(server: Postgres) -> str:
    return (
        server.admin_query(
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'forgejo%'"
        )
        + "|"
        + server.apply(
            "\\c forgejo\nSELECT count(*), md5(string_agg(r::text, '' ORDER BY r.id)) FROM repo AS r;\n"
            "SELECT count(*) FROM issue;\n",
            "-qAt",
        )
        .stdout.strip()
        .replace("\n", "|")
    )


def test_postgres_round_trip(postgres: Postgres, repo: Restic) -> None:
    _pg_seed(postgres)
    store = _pg_store(postgres)
    before = _pg_state(postgres)
    manifest = _timed("postgres backup", lambda: create([store], repo, META))
    entry = manifest["stores"]["postgres"]["parts"]["forgejo.pgdump"]
    assert entry["tables"] == {
        "public.issue": ["300", entry["tables"]["public.issue"][1]],
        "public.repo": [str(ROWS), entry["tables"]["public.repo"][1]],
    }
    assert all(len(sum_) == 32 for _, sum_ in entry["tables"].values())
    assert manifest["tools"]["postgres"].startswith("pg_dump (PostgreSQL)")

    postgres.apply("\\c forgejo\nDROP TABLE issue;\nDELETE FROM repo WHERE id > 10;\n")
    assert _pg_state(postgres) != before
    report = _timed("postgres restore", lambda: restore([store], repo, None))
    assert "postgres/forgejo.pgdump: restored" in report
    assert all(line.endswith(": restored") for line in report), report
    assert _pg_state(postgres) == before  # the side and old copies are gone too
    # the restored database is still the client's: it connects with its own password
    forgejo = vault_secrets(*PLAN)["forgejo"]["postgres_password"]
    answer = postgres.query("SELECT count(*) FROM repo", user="forgejo", password=forgejo, database="forgejo")
    assert answer.stdout.strip() == str(ROWS), answer.stderr


def test_postgres_backup_account_cannot_write(postgres: Postgres) -> None:
    password = _passwords("postgres")[BACKUP_USER]
    answer = postgres.query("CREATE TABLE t (i int)", user=BACKUP_USER, password=password, database="forgejo")
    assert answer.returncode != 0
    assert "read-only transaction" in answer.stderr or "permission denied" in answer.stderr


def flip_a_byte(repo: Restic) -> None:
    """Damages the repository's biggest pack file by one bit, as a failing disk would."""
    packs = sorted((repo.repository / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    biggest = packs[-1]
    data = bytearray(biggest.read_bytes())
    data[len(data) // 3] ^= 0x01
    biggest.chmod(0o644)
    biggest.write_bytes(bytes(data))


def test_flipped_byte_is_named_by_verify_and_refused_by_restore(postgres: Postgres, repo: Restic) -> None:
    _pg_seed(postgres)
    store = _pg_store(postgres)
    create([store], repo, META)
    assert all(r.problem is None for r in verify([store], repo, None))
    flip_a_byte(repo)

    problems = [r.problem for r in verify([store], repo, None) if r.problem]
    assert problems, "verify did not notice the flipped byte"
    assert any("postgres/forgejo.pgdump" in p for p in problems), problems
    postgres.apply("\\c forgejo\nDELETE FROM issue;\nDELETE FROM repo WHERE id > 10;\n")
    with pytest.raises(BackupError, match="damaged, nothing restored"):
        restore([store], repo, None)
    assert postgres.apply("\\c forgejo\nSELECT count(*) FROM repo;\n", "-qAt").stdout.strip() == "10"


def test_wrong_repository_password_is_one_line(postgres: Postgres, repo: Restic, tmp_path: Path) -> None:
    create([_pg_store(postgres)], repo, META)
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not the key\n")
    with pytest.raises(BackupError, match=r"^wrong repository password"):
        verify([_pg_store(postgres)], Restic(repo.repository, wrong, repo.binary), None)


def test_a_store_that_is_down_is_one_line(repo: Restic) -> None:
    from tests.realservers import free_port

    down = LocalExecutor({"PGHOST": LOCALHOST, "PGPORT": str(free_port()), "PGCONNECT_TIMEOUT": "2"})
    store = Store("postgres", POSTGRES_BACKUP, down, _passwords("postgres"))
    with pytest.raises(BackupError, match=r"^store postgres is down"):
        create([store], repo, META)


# --- MariaDB (the mysql container's scripts) --------------------------------------------------


@pytest.fixture
def mariadb() -> Iterator[MariaDb]:
    try:
        with scratch(shipped("mysql", *PLAN)) as s, start_mariadb(s) as server:
            yield server
    except ServerUnavailableError as missing:
        pytest.skip(f"MariaDB missing ({missing}): apt-get install mariadb-server")


def _my_state(server: MariaDb) -> str:
    result = server.apply(
        "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT(id, ':', name) ORDER BY id)) FROM reference_api.orders;"
        "SELECT COUNT(*) FROM reference_api.lines;"
        "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY 1) FROM information_schema.SCHEMATA"
        " WHERE SCHEMA_NAME LIKE 'reference%';"
    )
    return result.stdout.replace("\n", "|")


def test_mariadb_round_trip(mariadb: MariaDb, repo: Restic) -> None:
    mariadb.apply(
        "USE reference_api;"
        "CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB;"
        "CREATE TABLE `lines` (id INT AUTO_INCREMENT PRIMARY KEY, o INT, note TEXT) ENGINE=InnoDB;"
        f"INSERT INTO orders SELECT seq, CONCAT('o''', seq) FROM seq_1_to_{ROWS};"
        "INSERT INTO `lines` (o, note) SELECT seq % 40 + 1, REPEAT('x', seq) FROM seq_1_to_300;"
    )
    executor = LocalExecutor({"MYSQL_UNIX_PORT": str(mariadb.socket)})
    store = Store("mysql", MYSQL_BACKUP, executor, _passwords("mysql"))
    before = _my_state(mariadb)
    manifest = _timed("mariadb backup", lambda: create([store], repo, META))
    tables = manifest["stores"]["mysql"]["parts"]["reference_api.sql"]["tables"]
    assert tables["orders"][0] == str(ROWS)
    assert tables["lines"][0] == "300"

    mariadb.apply("DROP TABLE reference_api.`lines`; DELETE FROM reference_api.orders WHERE id > 5;")
    assert _my_state(mariadb) != before
    report = _timed("mariadb restore", lambda: restore([store], repo, None))
    assert "mysql/reference_api.sql: restored" in report
    assert _my_state(mariadb) == before


# --- Redis ------------------------------------------------------------------------------------


def _redis_connect(port: int, ca: Path | None) -> RespConnection:
    from tests import tlsprobe

    return RespConnection(port, tlsprobe.context(ca) if ca is not None else None)


def _redis_keys(port: int, ca: Path | None, admin: str) -> dict[str, object]:
    with _redis_connect(port, ca) as redis:
        assert redis.call("AUTH", admin) == "OK"
        keys = redis.call("KEYS", "*")
        assert isinstance(keys, list)
        return {str(k): redis.call("DUMP", k.decode() if isinstance(k, bytes) else str(k)) for k in keys}


@pytest.mark.parametrize(
    "plan",
    [("phase=2", "profiles=minimal"), ("phase=4", "profiles=minimal")],
    ids=["phase2-plain", "phase4-tls-only"],
)
def test_redis_round_trip_through_the_backup_and_restore_users(repo: Restic, plan: tuple[str, ...]) -> None:
    """At phase 4 the node's plain port is closed (`port 0`): the scripts find its tls-port and
    CA in the node's own config and speak TLS, the swap's MIGRATE included."""
    try:
        with scratch(shipped("redis-1", *plan)) as s, start_redis(s):
            (conf,) = s.shipped.args_after("redis-server")
            tls_only = "port 0" in s.shipped.text(conf).splitlines()
            assert tls_only == ("phase=4" in plan)
            ca = s.host("/devstack/tls/ca.crt") if tls_only else None
            port, admin = s.port(6380 if tls_only else 6379), vault_secrets(*plan)["redis-1"]["password"]
            if tls_only:  # the plain port is really closed
                with pytest.raises(ConnectionRefusedError):
                    RespConnection(s.port(6379)).close()
            with _redis_connect(port, ca) as redis:
                assert redis.call("AUTH", admin) == "OK"
                for i in range(ROWS):
                    redis.call("SET", f"k:{i}", f"v{i}" * 10)
                redis.call("HSET", 'it\'s "odd" key', "f", "v")
                redis.call("RPUSH", "queue", "a", "b", "c")
            management = vault_secrets(*plan)["management"]
            passwords = {
                BACKUP_USER: management["redis_backup_password"],
                RESTORE_USER: management["redis_restore_password"],
            }
            side_dir = s.root / "side"
            side_dir.mkdir()
            where = {"REDIS_CONF": s.arg(conf), "REDIS_PORT": str(s.port(6379)), "REDIS_SIDE_DIR": str(side_dir)}
            store = Store("redis-1", REDIS_BACKUP, LocalExecutor(where), passwords)
            before = _redis_keys(port, ca, admin)
            manifest = _timed(f"redis backup ({plan[0]})", lambda: create([store], repo, META))
            assert manifest["stores"]["redis-1"]["parts"]["dump.rdb"]["tables"] == {"keys": [str(ROWS + 2), "-"]}

            with _redis_connect(port, ca) as redis:  # the wipe
                assert redis.call("AUTH", admin) == "OK"
                assert redis.call("FLUSHALL") == "OK"
                redis.call("SET", "k:1", "changed")
            report = _timed(f"redis restore ({plan[0]})", lambda: restore([store], repo, None))
            assert report == ["redis-1/dump.rdb: restored"]
            assert _redis_keys(port, ca, admin) == before
            # the backup user reads no value by name; the restore user reads nothing at all
            with _redis_connect(port, ca) as redis:
                assert redis.call("AUTH", BACKUP_USER, passwords[BACKUP_USER]) == "OK"
                assert "NOPERM" in str(redis.call("GET", "k:1"))
                assert "NOPERM" in str(redis.call("FLUSHALL"))
                assert redis.call("AUTH", RESTORE_USER, passwords[RESTORE_USER]) == "OK"
                assert "NOPERM" in str(redis.call("GET", "k:1"))
                assert "NOPERM" in str(redis.call("KEYS", "*"))
    except ServerUnavailableError as missing:
        pytest.skip(f"Redis missing ({missing}): apt-get install redis-server")


# --- RabbitMQ ---------------------------------------------------------------------------------


def test_rabbitmq_definitions_round_trip(repo: Restic) -> None:
    """A private node (tests/test_tls_rabbitmq_real.py) with the plan's files and its account
    step; rabbitmqctl reaches it with the node's cookie, as in the container."""
    import glob
    import subprocess

    from devstack.services.rabbitmq import BACKUP as RABBITMQ_BACKUP
    from tests.test_tls_rabbitmq_real import _running_node

    cli = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmqctl"))
    if not cli:
        pytest.skip("rabbitmq-server missing: apt-get install rabbitmq-server")
    item = shipped("rabbitmq", *PLAN)
    with _running_node(item) as node:
        env = {**node.cli_env, "PATH": f"{Path(cli[-1]).parent}:{os.environ['PATH']}"}

        def ctl(*args: str, script: str | None = None) -> str:
            argv = ["sh", "-s"] if script is not None else ["rabbitmqctl", "--silent", *args]
            result = subprocess.run(
                argv, input=script, capture_output=True, text=True, env={**os.environ, **env}, timeout=120, check=False
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert item.accounts_script is not None
        ctl(script=item.accounts_script)  # the plan's account step: the clients' users and permissions
        ctl("add_vhost", "reports")
        ctl("set_policy", "-p", "dev_vhost", "ttl", "^reference-api\\.", '{"message-ttl": 60000}')
        store = Store(
            "rabbitmq", RABBITMQ_BACKUP, LocalExecutor({**env, "RABBITMQ_SIDE_DIR": str(node.log.parent)}), {}
        )
        before = ctl("export_definitions", "-")
        manifest = _timed("rabbitmq backup", lambda: create([store], repo, META))
        assert manifest["stores"]["rabbitmq"]["parts"]["definitions.json"]["size"] == len(before.encode())

        ctl("clear_policy", "-p", "dev_vhost", "ttl")
        ctl("delete_vhost", "reports")
        ctl("delete_user", "reference_api")
        assert ctl("export_definitions", "-") != before
        report = _timed("rabbitmq restore", lambda: restore([store], repo, None))
        assert report == ["rabbitmq/definitions.json: restored"]
        assert _definitions(ctl("export_definitions", "-")) == _definitions(before)


def _definitions(text: str) -> dict[str, object]:
    """Exported definitions; RabbitMQ 3.10 exports an imported vhost's empty tag list as ''."""
    definitions = json.loads(text)
    for vhost in definitions["vhosts"]:
        vhost["metadata"]["tags"] = vhost["metadata"]["tags"] or []
    return definitions


# --- A full disk --------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB filesystem (tmpfs): writes past it fail with ENOSPC, as on a full disk."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("a full disk is made with `mount -t tmpfs -o size=2m`, which needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=False)
    if result.returncode != 0:
        pytest.skip("mount -t tmpfs refused (no CAP_SYS_ADMIN here): a full disk cannot be made")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_records_nothing_and_swaps_nothing_in(repo: Restic, small_disk: Path, tmp_path: Path) -> None:
    """create into a repository on a full disk, and restore whose side copy finds no room: one
    line naming the store and what to do, no manifest recorded, the live data untouched."""
    from tools.backup import backups, last_success

    plan = ("phase=2", "profiles=minimal")
    try:
        with scratch(shipped("redis-1", *plan)) as s, start_redis(s):
            port, admin = s.port(6379), vault_secrets(*plan)["redis-1"]["password"]
            with RespConnection(port) as redis:  # an RDB of ~6 MB that compresses little
                assert redis.call("AUTH", admin) == "OK"
                assert redis.call("SET", "big", os.urandom(3_000_000).hex()) == "OK"
            management = vault_secrets(*plan)["management"]
            passwords = {
                BACKUP_USER: management["redis_backup_password"],
                RESTORE_USER: management["redis_restore_password"],
            }
            (conf,) = s.shipped.args_after("redis-server")

            def store(side_dir: Path) -> Store:
                where = {"REDIS_CONF": s.arg(conf), "REDIS_PORT": str(port), "REDIS_SIDE_DIR": str(side_dir)}
                return Store("redis-1", REDIS_BACKUP, LocalExecutor(where), passwords)

            side = tmp_path / "side"
            side.mkdir()
            full = Restic(small_disk / "repo", repo.password_file, repo.binary)
            with pytest.raises(BackupError) as failed:
                create([store(side)], full, META)
            assert "\n" not in str(failed.value)
            assert str(failed.value).startswith("store redis-1: the disk holding the backup repository")
            assert "is full: free space there" in str(failed.value)
            assert all(MANIFEST not in b["files"] for b in backups(full).values())  # nothing complete
            assert last_success(full) == {}

            create([store(side)], repo, META)  # the same backup, on a disk with room
            with RespConnection(port) as redis:
                assert redis.call("AUTH", admin) == "OK"
                assert redis.call("FLUSHALL") == "OK"
                redis.call("SET", "k:1", "changed")
            with pytest.raises(BackupError) as failed:
                restore([store(small_disk)], repo, None)
            assert "\n" not in str(failed.value)
            assert str(failed.value).startswith(
                "nothing swapped in, the live data is untouched: store redis-1 has no room for the side copy"
            )
            assert "free space where redis-1 keeps its data" in str(failed.value)
            assert _live(port, admin) == ([b"k:1"], b"changed")
            assert list(small_disk.iterdir()) == [small_disk / "repo"]  # the side copy is gone

            assert restore([store(side)], repo, None) == ["redis-1/dump.rdb: restored"]  # room: it restores
            assert b"big" in _live(port, admin)[0]  # type: ignore[operator]  # restores merge: k:1 stays
    except ServerUnavailableError as missing:
        pytest.skip(f"Redis missing ({missing}): apt-get install redis-server")


def _live(port: int, admin: str) -> tuple[object, object]:
    """The node's keys, and the value of k:1."""
    with RespConnection(port) as redis:
        assert redis.call("AUTH", admin) == "OK"
        return redis.call("KEYS", "*"), redis.call("GET", "k:1")
