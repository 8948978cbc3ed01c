"""docs/troubleshooting.md quotes what the user sees: each message is produced here by the real
thing (the Docker engine, the Pulumi CLI built by .ci/toolchain) and must be the one the page
quotes, so a new wording of either shows up as a failing test, not as a wrong page.

Docker objects are named `docs-ts-<pid>-...` and removed afterwards; the only traffic is a
listener on 127.0.0.1 this test opens itself."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import toolchain
from tests.dockerlab import docker, docker_unavailable_reason, free_octet, probe_image

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "troubleshooting.md").read_text()
PREFIX = f"docs-ts-{os.getpid()}"


def quoted(fragment: str) -> None:
    assert fragment in " ".join(PAGE.split()), f"docs/troubleshooting.md no longer quotes: {fragment}"


@pytest.fixture(scope="module")
def image() -> str:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return probe_image()


@pytest.fixture
def cleanup() -> Iterator[list[tuple[str, str]]]:
    made: list[tuple[str, str]] = []
    yield made
    for kind, name in reversed(made):
        if kind == "container":
            docker("rm", "-f", name, check=False)
        else:
            docker("network", "rm", name, check=False)


def _run(image: str, name: str, port: int, cleanup: list[tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    cleanup.append(("container", name))
    return subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", image, "sleep", "30"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_port_taken_by_a_host_program(image: str, cleanup: list[tuple[str, str]]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = _run(image, f"{PREFIX}-a", port, cleanup)
    assert result.returncode != 0
    said = result.stderr.replace(str(port), "5432")
    fragment = "Error starting userland proxy: listen tcp4 127.0.0.1:5432: bind: address already in use"
    assert fragment in said, said
    quoted(fragment)


def test_a_port_taken_by_another_container(image: str, cleanup: list[tuple[str, str]]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert _run(image, f"{PREFIX}-b", port, cleanup).returncode == 0
    result = _run(image, f"{PREFIX}-c", port, cleanup)
    assert result.returncode != 0
    fragment = "Bind for 127.0.0.1:5432 failed: port is already allocated"
    assert fragment in result.stderr.replace(str(port), "5432"), result.stderr
    quoted(fragment)


def test_an_overlapping_network(cleanup: list[tuple[str, str]]) -> None:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    octet = free_octet()
    cleanup.append(("network", f"{PREFIX}-tier"))
    docker("network", "create", "--subnet", f"10.{octet}.2.0/24", f"{PREFIX}-tier")
    cleanup.append(("network", f"{PREFIX}-flat"))
    result = subprocess.run(
        ["docker", "network", "create", "--subnet", f"10.{octet}.0.0/16", f"{PREFIX}-flat"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    fragment = "Error response from daemon: Pool overlaps with other one on this address space"
    assert fragment in result.stderr, result.stderr
    quoted(fragment)


def test_the_passphrase_messages(tmp_path: Path) -> None:
    pulumi = toolchain.binary("pulumi")
    env = toolchain.environment(tmp_path, pulumi.parent)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: probe\nruntime: python\n")
    env["PULUMI_BACKEND_URL"] = f"file://{tmp_path / 'state'}"
    (tmp_path / "right").write_text("right\n")
    (tmp_path / "wrong").write_text("wrong\n")

    def cli(*args: str, passphrase_file: str | None) -> subprocess.CompletedProcess[str]:
        run_env = dict(env)
        if passphrase_file is not None:
            run_env["PULUMI_CONFIG_PASSPHRASE_FILE"] = passphrase_file
        return subprocess.run(
            [str(pulumi), *args],
            cwd=project,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    right = str(tmp_path / "right")
    assert cli("stack", "init", "dev", passphrase_file=right).returncode == 0
    assert cli("config", "set", "--secret", "token", "x", passphrase_file=right).returncode == 0
    cases = [
        (str(tmp_path / "wrong"), "error: incorrect passphrase"),
        (None, "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"),
        (str(tmp_path / "missing"), "error: unable to read PULUMI_CONFIG_PASSPHRASE_FILE: open"),
    ]
    for passphrase_file, fragment in cases:
        result = cli("config", "get", "token", passphrase_file=passphrase_file)
        assert result.returncode != 0
        assert fragment in result.stderr, result.stderr
        quoted(fragment)
