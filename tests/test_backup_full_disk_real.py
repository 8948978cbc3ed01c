"""A restore whose side copies find no room, on Debian's PostgreSQL and MariaDB.

Each server keeps its data directory on a real tmpfs this test mounts (needs root, as CI runs),
then the test fills that filesystem with a file of its own until only a few MiB are left: room
enough for the server to run, not for the backup's big table. The restore goes through
`python -m tools.backup restore`'s main(): it must fail in one line naming the store and the part
and saying to free space, exit 1, leave no side copy behind (every part's, not only the failing
one's) and the live data as it was. With the filler gone, the same restore succeeds (the line's
advice works).

MariaDB really loads its side copies until InnoDB cannot extend the big table's file (ENOSPC,
"The table 'big' is full"), then drops them; the server goes on. PostgreSQL must never get
there: on a data disk filled to the last byte it cannot write the side copy's dirty pages, and
the checkpoint DROP DATABASE forces PANICs (seen before the check existed, on this tmpfs filled
to within 10 MiB with the WAL kept elsewhere), so restore checks the side copies' sizes recorded
by create against what is free, and loads nothing when they do not fit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.model import Backup
from tests.realservers import LOCALHOST, MariaDb, Postgres, ServerUnavailableError
from tests.shipped import scratch, shipped, start_mariadb, start_postgres
from tests.test_backup_real import META, PLAN, _passwords, _restic
from tools import backup
from tools.backup import LocalExecutor, Restic, Store, create
from tools.servers import server_identity

pytestmark = pytest.mark.real

MIB = 1 << 20
ROWS = 120_000  # about 14 MiB of table in either server: more than the room left
ROOM_LEFT = 10 * MIB  # MariaDB: its redo log is preallocated, the side copies grow in it
# PostgreSQL's WAL is on the same disk (as in the container): three 16 MiB segments' worth, room
# to keep running, though less than the side copies and their reserve need.
PG_ROOM_LEFT = 48 * MIB


@contextlib.contextmanager
def _small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of size_mb at path, owned by the servers' user (0700)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is made with `mount -t tmpfs`, which needs root")
    path.mkdir()
    identity = server_identity()
    owner = f",uid={identity.uid},gid={identity.gid}" if identity is not None else ""
    options = f"size={size_mb}m,mode=0700{owner}"
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=False).returncode != 0:
        pytest.skip("mount -t tmpfs refused (no CAP_SYS_ADMIN here): a full disk cannot be made")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A file that takes all but `leave` bytes of the filesystem (tmpfs allocates what is written)."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with filler.open("wb") as out:
        left = free - leave
        block = b"\0" * MIB
        while left > 0:
            out.write(block[: min(left, MIB)])
            left -= MIB
    return filler


def _free(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def _restore_through_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], repo: Restic, store: Store
) -> tuple[int, list[str]]:
    """`python -m tools.backup restore` with the stack's lookups pointed at the test's store."""
    monkeypatch.setattr(backup, "running", lambda container: True)
    monkeypatch.setattr(backup, "stack_outputs", lambda stack: {"phase": 2})
    monkeypatch.setattr(backup, "management_secret", lambda outputs: {})
    monkeypatch.setattr(backup, "user_stores", lambda services, passwords: [store])
    capsys.readouterr()
    code = backup.main(["--repo", str(repo.repository), "--password-file", str(repo.password_file), "restore"])
    return code, capsys.readouterr().err.splitlines()


def _one_line(lines: list[str], store: str, part: str) -> None:
    assert len(lines) == 1, lines
    (line,) = lines
    print(f"\n{line}", file=sys.__stdout__)  # capsys holds sys.stdout: shown with -s
    assert line.startswith(f"error: nothing swapped in, the live data is untouched: store {store} has no room"), line
    assert f"for the side copies of {part} " in line or f"for the side copy of {part} " in line, line
    assert f"free space where {store} keeps its data" in line, line


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_state(server: Postgres) -> str:
    return (
        server.admin_query("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate")
        + server.apply("\\c forgejo\nSELECT count(*), md5(string_agg(b, '' ORDER BY id)) FROM big;\n", "-qAt").stdout
    )


def test_postgres_side_copy_on_a_full_disk(
    repo: Restic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        with (
            scratch(shipped("postgres", *PLAN)) as s,
            _small_disk(s.root / "pgdata", 320) as disk,
            start_postgres(s) as server,
        ):
            server.apply(
                "\\c forgejo\nSET ROLE forgejo;\nCREATE TABLE big (id int PRIMARY KEY, b text);\n"
                f"INSERT INTO big SELECT i, md5(i::text) || md5((-i)::text) FROM generate_series(1, {ROWS}) AS i;\n"
            )
            where = LocalExecutor(
                {"PGHOST": LOCALHOST, "PGPORT": str(server.port), "PGCONNECT_TIMEOUT": "5", "PGDATA": str(disk)}
            )
            store = Store("postgres", backup_spec("postgres"), where, _passwords("postgres"))
            manifest = create([store], repo, META)
            parts = manifest["stores"]["postgres"]["parts"]
            assert parts["forgejo.pgdump"]["room"] > ROWS * 64  # pg_database_size, recorded
            server.apply("\\c forgejo\nDELETE FROM big WHERE id > 100;\n")
            live = _pg_state(server)

            filler = _fill(disk, PG_ROOM_LEFT)
            free = _free(disk)
            code, lines = _restore_through_main(monkeypatch, capsys, repo, store)
            assert code == 1
            _one_line(lines, "postgres", "forgejo.pgdump")
            assert f"and its other {len(parts) - 1} part(s)" in lines[0]
            assert _pg_state(server) == live  # no side copy of any part, the live data as it was
            assert "_devstack_" not in live
            assert _free(disk) >= free - MIB  # nothing was loaded
            assert "PANIC" not in (s.root / "server.log").read_text()

            filler.unlink()
            code, lines = _restore_through_main(monkeypatch, capsys, repo, store)
            assert (code, lines) == (0, [])
            assert server.apply("\\c forgejo\nSELECT count(*) FROM big;\n", "-qAt").stdout.strip() == str(ROWS)
    except ServerUnavailableError as missing:
        pytest.skip(f"PostgreSQL missing ({missing}): apt-get install postgresql")


# --- MariaDB ----------------------------------------------------------------------------------


def _my_state(server: MariaDb) -> str:
    return server.apply(
        "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY 1) FROM information_schema.SCHEMATA;"
        "SELECT COUNT(*), MD5(GROUP_CONCAT(b ORDER BY id)) FROM reference_api.big;"
    ).stdout


def test_mariadb_side_copy_on_a_full_disk(
    repo: Restic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        with (
            scratch(shipped("mysql", *PLAN)) as s,
            _small_disk(s.root / "mysql", 320) as disk,
            start_mariadb(s) as server,
        ):
            server.apply(
                "USE reference_api; CREATE TABLE big (id INT PRIMARY KEY, b VARCHAR(80)) ENGINE=InnoDB;"
                f"INSERT INTO big SELECT seq, CONCAT(MD5(seq), MD5(-seq)) FROM seq_1_to_{ROWS};"
                "USE api_first; CREATE TABLE small (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO small VALUES (1);"
            )
            where = LocalExecutor({"MYSQL_UNIX_PORT": str(server.socket)})
            store = Store("mysql", backup_spec("mysql"), where, _passwords("mysql"))
            manifest = create([store], repo, META)
            parts = sorted(manifest["stores"]["mysql"]["parts"])
            assert parts[-1] == "reference_api.sql"  # loaded last: the others' side copies exist by then
            assert "room" not in manifest["stores"]["mysql"]["parts"]["reference_api.sql"]  # no check: it copes
            server.apply("DELETE FROM reference_api.big WHERE id > 100;")
            live = _my_state(server)

            filler = _fill(disk, ROOM_LEFT)
            free = _free(disk)
            code, lines = _restore_through_main(monkeypatch, capsys, repo, store)
            assert code == 1
            _one_line(lines, "mysql", "reference_api.sql")
            assert _my_state(server) == live
            assert "_devstack_" not in live
            assert _free(disk) >= free - 2 * MIB  # what the side copies took is given back
            assert "InnoDB: preallocating" in (s.root / "server.log").read_text()  # it really hit ENOSPC

            filler.unlink()
            code, lines = _restore_through_main(monkeypatch, capsys, repo, store)
            assert (code, lines) == (0, [])
            assert server.apply("SELECT COUNT(*) FROM reference_api.big;").stdout.split()[-1] == str(ROWS)
    except ServerUnavailableError as missing:
        pytest.skip(f"MariaDB missing ({missing}): apt-get install mariadb-server")


def backup_spec(service: str) -> Backup:
    from devstack.catalog import SERVICES_BY_NAME

    spec = SERVICES_BY_NAME[service].backup
    assert spec is not None
    return spec


@pytest.fixture
def repo(tmp_path: Path) -> Restic:
    return Restic(tmp_path / "repo", tmp_path / "repo.key", _restic())
