"""The cluster-forming script, run for real under busybox sh against three redis-server nodes
on 127.0.0.1, each started with exactly its container's files from the plan (tests/shipped.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shipped import Scratch, scratch, shipped, start_redis, vault_secrets

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "redis-cluster-create.sh"
NODES = ("redis-1", "redis-2", "redis-3")

pytestmark = pytest.mark.real

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
BUSYBOX = shutil.which("busybox")


def _overrides(phase: int) -> tuple[str, ...]:
    return (f"phase={phase}", "profiles=standard")


def _password() -> str:
    """The nodes' admin password: the plan's, the same for the three (their ACL files hold its hash)."""
    return vault_secrets(*_overrides(0))["redis-1"]["password"]


def _cli(port: int, *args: str) -> str:
    env = {**os.environ, "REDISCLI_AUTH": _password()}
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
        pytest.skip("redis-server, redis-cli and busybox missing: apt-get install redis-server busybox-static")


@contextlib.contextmanager
def _three_nodes(phase: int) -> Iterator[list[Scratch]]:
    """redis-1..3 each with exactly its container's redis.conf and ACL file from the plan."""
    with contextlib.ExitStack() as stack:
        nodes = []
        for name in NODES:
            node = stack.enter_context(scratch(shipped(name, *_overrides(phase))))
            nodes.append(stack.enter_context(start_redis(node)))
        assert {n.shipped.vault_secret["password"] for n in nodes} == {_password()}
        yield nodes


@pytest.fixture
def nodes() -> Iterator[list[int]]:
    _require_tools()
    with _three_nodes(0) as started:
        yield [node.port(6379) for node in started]


def _run_script(ports: list[int], password: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    # The program pipes the script into `sh -s` inside dev-redis-1; here busybox sh plays that shell.
    env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": password or _password(), "DEVSTACK_WAIT_SECONDS": "20", **extra}
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
    assert _password() not in first.stdout + first.stderr

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
def tls_nodes() -> Iterator[tuple[list[int], Path]]:
    """The three nodes at phase 4: TLS required (no plaintext port, cluster bus over TLS too),
    each with its own certificate from the plan (their SANs include 127.0.0.1)."""
    _require_tools()
    with _three_nodes(4) as started:
        yield [node.port(6380) for node in started], started[0].host("/devstack/tls/ca.crt")


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
        env={**os.environ, "REDISCLI_AUTH": _password()},
        timeout=10,
        check=True,
    ).stdout
    assert "cluster_state:ok" in info
    assert "cluster_slots_assigned:16384" in info
