"""tools/servers.py's process handling, with real processes (a shell one-liner stands in for a
server, run as `nobody` under root as the servers are), and its memory cgroup parts on files
made here (this machine may have no cgroup v1)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tools import servers

SH = "/bin/sh"
# Ignores SIGTERM (an ignored signal stays ignored across exec), says so, then waits to be killed.
STUBBORN = 'trap "" TERM; echo up; exec sleep 60'


def test_a_server_that_ignores_its_stop_signal_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "STOP_TIMEOUT", 0.5)
    log = tmp_path / "server.log"
    started = time.monotonic()
    with servers.server_process([SH, "-c", STUBBORN], log) as process:
        servers.wait_until(lambda: "up" in log.read_text(), process, log, "stub")
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 30


def test_waiting_fails_with_the_logs_tail_when_the_server_exits(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    script = 'i=0; while [ $i -lt 40 ]; do echo "line $i"; i=$((i + 1)); done; exit 3'
    with (
        servers.server_process([SH, "-c", script], log) as process,
        pytest.raises(RuntimeError) as caught,
    ):
        servers.wait_until(lambda: False, process, log, "stub", tail_lines=2)
    assert str(caught.value) == "stub exited with status 3:\nline 38\nline 39"


def test_waiting_fails_when_the_server_is_never_ready(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with (
        servers.server_process([SH, "-c", "exec sleep 60"], log) as process,
        pytest.raises(RuntimeError, match=r"^stub did not become ready within 0s:\n$"),
    ):
        servers.wait_until(lambda: False, process, log, "stub", timeout=0.2)
    assert process.returncode == -signal.SIGTERM


def test_small_helpers(tmp_path: Path) -> None:
    assert servers.tail(tmp_path / "missing.log") == "(no log)"
    with pytest.raises(servers.ServerUnavailableError, match="no-such-server is not installed"):
        servers.find("no-such-server")
    failed = subprocess.CompletedProcess(["x"], 2, stdout="why\n")
    with pytest.raises(RuntimeError, match=r"^initdb failed with status 2:\nwhy\n$"):
        servers.checked(failed, "initdb")
    ok = subprocess.CompletedProcess(["x"], 0, stdout="")
    assert servers.checked(ok, "initdb") is ok
    port = servers.free_port()
    assert port < servers.HIGHEST_PORT
    assert not servers.accepts(port)  # nothing listens there


def test_free_port_never_hands_out_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel may offer a port again before the first server told it has bound it."""
    offered = iter([40001, 40001, 40002])

    class Socket:
        def __init__(self, *_: object) -> None:
            self.port = next(offered)

        def __enter__(self) -> Socket:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def bind(self, _: object) -> None:
            return None

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(servers, "_ISSUED", set())
    monkeypatch.setattr(servers.socket, "socket", Socket)
    assert [servers.free_port(), servers.free_port()] == [40001, 40002]


def test_a_one_off_command_runs_with_the_clients_settings_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "from the developer's shell")
    log = tmp_path / "run.log"
    with servers.server_dir("devstack-test-") as base:
        servers.write_owned(base / "file", "text", 0o640)
        assert (base / "file").stat().st_mode & 0o777 == 0o640
        result = servers.run_as_server([SH, "-c", 'echo "${PGPASSWORD:-None} $LC_ALL"'], log)
    assert result.returncode == 0
    assert log.read_text() == "None C.UTF-8\n"
    assert not base.exists()


def test_the_memory_cgroup_is_found_only_where_we_may_write(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("9:pids:/\n8:blkio:/\n")
    assert servers._memory_cgroup_root(proc) is None  # no memory controller (cgroup v2 or none)
    assert servers._memory_cgroup_root(tmp_path / "absent") is None
    proc.write_text("5:cpu,memory:/no/such/group\n")
    assert servers._memory_cgroup_root(proc) is None  # not ours to write


def test_a_limit_writes_its_group_and_wraps_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "server_identity", lambda: None)  # a plain folder has no cgroup.procs to hand over
    limit = servers.Limit(256, root=tmp_path)
    assert limit.path is not None
    assert (limit.path / "memory.limit_in_bytes").read_text() == str(256 * 1024 * 1024)
    assert limit.wrap(["redis-server", "x.conf"]) == [
        "sh",
        "-c",
        'echo $$ > "$0/cgroup.procs" && exec "$@"',
        str(limit.path),
        "redis-server",
        "x.conf",
    ]
    (limit.path / "memory.limit_in_bytes").unlink()  # a real group's files go with it
    limit.close()
    assert not limit.path.exists()


def test_without_cgroups_a_limit_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_memory_cgroup_root", lambda: None)
    assert not servers.cgroups_available()
    limit = servers.Limit(256)
    assert limit.path is None
    assert limit.wrap(["redis-server"]) == ["redis-server"]
    limit.close()
