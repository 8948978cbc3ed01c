"""The Debian builds of the data servers, started with the files the phase-4 plan ships, under the
constraints the hardened containers put on them: the catalog's uid:gid, no capability at all (not
even in the bounding set), no-new-privileges, no extra group (setpriv). Each still starts and
serves; the process really runs so. (What this cannot show: the images' own entrypoints, which
need the images, and the engine's side: tests/test_hardening_docker.)"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.hardening import catalog_entry
from tests.realservers import LOCALHOST, RespConnection, ServerUnavailableError, hardened
from tests.shipped import scratch, shipped, start_mariadb, start_pgbouncer, start_postgres, start_redis
from tests.test_shipped_real import _need

pytestmark = pytest.mark.real

PHASE_4 = ("phase=4", "profiles=minimal,reference")


def _uid_gid(service: str) -> tuple[int, int]:
    user = catalog_entry(SERVICES_BY_NAME[service]).user
    assert user is not None, f"{service} runs as root: nothing to prove here"
    uid, gid = user.split(":")
    return int(uid), int(gid)


@contextlib.contextmanager
def _hardened(service: str) -> Iterator[tuple[int, int]]:
    uid, gid = _uid_gid(service)
    try:
        with hardened(uid, gid):
            yield uid, gid
    except ServerUnavailableError as error:
        pytest.skip(str(error))


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _servers_under(root: Path) -> list[int]:
    """The processes working in the scratch folder or naming it on their command line (Redis
    renames itself but works in its `dir`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(root) in line or os.readlink(entry / "cwd").startswith(str(root)):
                found.append(int(entry.name))
    return found


def _assert_confined(root: Path, uid: int, gid: int) -> None:
    checked = 0
    for pid in _servers_under(root):
        try:
            status = _status(pid)
        except FileNotFoundError:  # a backend that exited since the listing: nothing to check
            continue
        checked += 1
        assert status["Uid"].split() == [str(uid)] * 4, status["Uid"]
        assert status["Gid"].split() == [str(gid)] * 4, status["Gid"]
        assert status["Groups"].strip() == ""
        for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[field], 16) == 0, (field, status[field])
        assert status["NoNewPrivs"].strip() == "1"
    assert checked, f"no server process under {root}"


def test_redis_serves_as_its_catalog_user_with_nothing_else() -> None:
    _need("redis-server")
    with _hardened("redis-1") as (uid, gid), scratch(shipped("redis-1", *PHASE_4)) as s, start_redis(s):
        _assert_confined(s.root, uid, gid)
        from tests import tlsprobe

        with RespConnection(s.port(6380), tlsprobe.context(s.host("/devstack/tls/ca.crt"))) as connection:
            reply = connection.call("PING")
        assert str(reply).startswith("NOAUTH"), reply  # it answers, and asks for a login


def test_postgres_and_pgbouncer_serve_as_their_catalog_users() -> None:
    _need("postgres", "psql", "pgbouncer")
    with (
        _hardened("postgres") as (uid, gid),
        scratch(shipped("postgres", *PHASE_4)) as s,
        start_postgres(s) as server,
    ):
        _assert_confined(s.root, uid, gid)
        assert server.admin_query("SELECT current_setting('ssl')").strip() == "on"
        bouncer_uid, bouncer_gid = _uid_gid("pgbouncer")
        with (
            hardened(bouncer_uid, bouncer_gid),
            scratch(shipped("pgbouncer", *PHASE_4), peers={"postgres": server.port}) as b,
            start_pgbouncer(b),
        ):
            _assert_confined(b.root, bouncer_uid, bouncer_gid)
            with socket.create_connection((LOCALHOST, b.port(5432)), timeout=5):
                pass


def test_mariadb_serves_as_the_mysql_catalog_user() -> None:
    _need("mariadbd", "mariadb")
    with _hardened("mysql") as (uid, gid), scratch(shipped("mysql", *PHASE_4)) as s, start_mariadb(s) as server:
        _assert_confined(s.root, uid, gid)
        assert server.port > 0
        assert os.path.exists(s.root)
