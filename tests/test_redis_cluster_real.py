"""The cluster-forming script, run for real under busybox sh against three redis-server nodes
on 127.0.0.1, configured as the program configures them (ACL file, cluster mode)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.realservers import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "redis-cluster-create.sh"
PASSWORD = "cluster-admin-password-for-tests"

pytestmark = pytest.mark.real

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
BUSYBOX = shutil.which("busybox")


def _free_port() -> int:
    # Cluster bus = port + 10000, so keep ports below 55535.
    while (port := free_port()) >= 55000:
        pass
    return port


def _cli(port: int, *args: str) -> str:
    env = {**os.environ, "REDISCLI_AUTH": PASSWORD}
    result = subprocess.run(
        [REDIS_CLI or "redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
        check=True,
    )
    return result.stdout


def _require_tools() -> None:
    if not (REDIS_SERVER and REDIS_CLI and BUSYBOX):
        pytest.skip("redis-server, redis-cli and busybox are installed by .ci/run")


@contextlib.contextmanager
def _three_nodes(tmp_path: Path, listener: Callable[[int], list[str]]) -> Iterator[list[int]]:
    """Three cluster-mode nodes on 127.0.0.1, each with the admin in its ACL file, as the program
    configures them; `listener` gives a node's port lines for the port it is given."""
    assert REDIS_SERVER is not None
    ports, processes = [], []
    verifier = hashlib.sha256(PASSWORD.encode()).hexdigest()
    try:
        for index in range(3):
            port = _free_port()
            home = tmp_path / f"node{index}"
            home.mkdir()
            (home / "users.acl").write_text(f"user default on #{verifier} ~* &* +@all\n")
            lines = ["bind 127.0.0.1", f"dir {home}", "appendonly no", f"aclfile {home / 'users.acl'}", "save ''"]
            lines += listener(port)
            lines += ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000"]
            lines += ["cluster-announce-ip 127.0.0.1"]
            (home / "redis.conf").write_text("\n".join(lines) + "\n")
            processes.append(subprocess.Popen([REDIS_SERVER, str(home / "redis.conf")], stdout=subprocess.DEVNULL))
            ports.append(port)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[int]]:
    _require_tools()
    with _three_nodes(tmp_path, lambda port: [f"port {port}"]) as ports:
        for port in ports:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if _cli(port, "ping").strip() == "PONG":
                        break
                except subprocess.CalledProcessError:
                    pass
                time.sleep(0.05)
        yield ports


def _run_script(ports: list[int], password: str = PASSWORD, **extra: str) -> subprocess.CompletedProcess[str]:
    # The program pipes the script into `sh -s` inside dev-redis-1; here busybox sh plays that shell.
    env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": password, "DEVSTACK_WAIT_SECONDS": "20", **extra}
    return subprocess.run(
        [BUSYBOX or "busybox", "sh", "-s", "--", *(f"127.0.0.1:{p}" for p in ports)],
        input=SCRIPT.read_text(),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _info(port: int) -> dict[str, str]:
    lines = _cli(port, "cluster", "info").splitlines()
    return dict(line.strip().split(":", 1) for line in lines if ":" in line)


def test_forms_three_masters_with_all_slots_then_leaves_it_alone(nodes: list[int]) -> None:
    first = _run_script(nodes)
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 20
    while _info(nodes[0]).get("cluster_known_nodes") != "3" and time.monotonic() < deadline:
        time.sleep(0.2)
    info = _info(nodes[0])
    assert info["cluster_state"] == "ok"
    assert info["cluster_slots_assigned"] == "16384"
    masters = [line for line in _cli(nodes[0], "cluster", "nodes").splitlines() if "master" in line]
    assert len(masters) == 3
    assert PASSWORD not in first.stdout + first.stderr

    second = _run_script(nodes)
    assert second.returncode == 0, second.stderr
    assert "already formed" in second.stderr
    assert "creating" not in second.stderr


def test_a_wrong_password_fails_without_touching_the_nodes(nodes: list[int]) -> None:
    result = _run_script(nodes, password="wrong")
    assert result.returncode != 0
    assert _info(nodes[0])["cluster_slots_assigned"] == "0"


def test_a_half_formed_cluster_is_reported_not_reset(nodes: list[int]) -> None:
    _cli(nodes[0], "cluster", "addslotsrange", "0", "100")
    result = _run_script(nodes)
    assert result.returncode == 3
    assert "already holds slots" in result.stderr
    assert _info(nodes[1])["cluster_slots_assigned"] == "0"


@pytest.fixture
def tls_nodes(tmp_path: Path) -> Iterator[tuple[list[int], Path]]:
    """Three nodes with TLS required (no plaintext port, cluster bus over TLS too), using the
    plan's own certificate for redis-1 (its SANs include 127.0.0.1)."""
    from devstack.phases import TlsMode
    from devstack.services.redis import redis_lines
    from devstack.tls import CA_FILE
    from tests.planpki import server_files

    _require_tools()
    files = server_files(["phase=4", "profiles=standard"], ("redis-1",))["redis-1"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with _three_nodes(tmp_path, lambda port: redis_lines(TlsMode.REQUIRED, 0, port, str(tmp_path))) as ports:
        yield ports, tmp_path / CA_FILE


def test_forms_the_cluster_over_tls_when_plaintext_is_refused(tls_nodes: tuple[list[int], Path]) -> None:
    ports, ca = tls_nodes
    result = _run_script(ports, DEVSTACK_REDIS_TLS_CA=str(ca))
    assert result.returncode == 0, result.stderr
    tls = ["--tls", "--cacert", str(ca), "--sni", "localhost"]
    info = subprocess.run(
        [
            REDIS_CLI or "redis-cli",
            "--no-auth-warning",
            *tls,
            "-h",
            "127.0.0.1",
            "-p",
            str(ports[0]),
            "cluster",
            "info",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "REDISCLI_AUTH": PASSWORD},
        timeout=10,
        check=True,
    ).stdout
    assert "cluster_state:ok" in info
    assert "cluster_slots_assigned:16384" in info
