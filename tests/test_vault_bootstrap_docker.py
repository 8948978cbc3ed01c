"""scripts/vault-bootstrap.sh checks, with the real Docker engine, that VAULT_ADDR is Vault's
container before it sends anything more (the unseal keys go over plain HTTP at phase 0).

The container is a busybox stand-in (no Vault image can be pulled here) publishing its 8200 on
127.0.0.1 as the plan publishes Vault's, answering sys/seal-status (unsealed), sys/health and
auth/token/lookup-self (the root token check) with static files: through it the script's check
passes against real `docker inspect` and `docker port` answers. The sealed Vault the keys must
never reach is tests/fakevault.py on another loopback port: no Vault binary exists here, and the
point is a sealed server that counts the unseal requests it receives. Objects are named
`vaultstrict-<pid>-...`; traffic stays on 127.0.0.1 and the test's own container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerlab import LABEL, docker
from tests.fakevault import FakeVault

pytestmark = pytest.mark.real

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "vault-bootstrap.sh"
NAME = f"vaultstrict-{os.getpid()}-bootstrap"
TOKEN = "hvs.standintoken"
SEAL_STATUS = '{"type":"shamir","initialized":true,"sealed":false,"t":3,"n":5,"progress":0}'
SERVE = (
    "mkdir -p /www/v1/sys /www/v1/auth/token"
    f" && printf '%s' '{SEAL_STATUS}' >/www/v1/sys/seal-status && printf '{{}}' >/www/v1/sys/health"
    # the bootstrap checks its root token (keep mode): the stand-in accepts it, as Vault would
    " && printf '{}' >/www/v1/auth/token/lookup-self"
    " && exec httpd -f -p 8200 -h /www"
)


@pytest.fixture(scope="module")
def stand_in(busybox_image: str) -> Iterator[tuple[str, str]]:
    """The container's id and the address its 8200 is published at."""
    docker("rm", "-f", NAME, check=False)
    try:
        container = docker(
            "run", "-d", "--name", NAME, "--label", f"{LABEL}=vaultstrict", "-p", "127.0.0.1::8200",
            busybox_image, "sh", "-c", SERVE,
        ).strip()  # fmt: skip
        port = docker("port", container, "8200/tcp").split()[0].rsplit(":", 1)[1]
        address = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{address}/v1/sys/seal-status", timeout=5) as answer:
                    assert json.loads(answer.read())["sealed"] is False
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield container, address
    finally:
        docker("rm", "-f", NAME, check=False)


def _run(tmp_path: Path, address: str, container: str, port: str = "8200") -> subprocess.CompletedProcess[str]:
    init_file = tmp_path / "state" / "vault-init.json"
    init_file.parent.mkdir(mode=0o700, exist_ok=True)
    keys = ["a2V5MQ==", "a2V5Mg==", "a2V5Mw=="]
    init_file.write_text(json.dumps({"keys": keys, "keys_base64": keys, "root_token": TOKEN}))
    init_file.chmod(0o600)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "VAULT_ADDR": address,
        "DEVSTACK_VAULT_INIT_FILE": str(init_file),
        "DEVSTACK_WAIT_SECONDS": "5",
        "DEVSTACK_NO_INIT": "1",
        "DEVSTACK_VAULT_CONTAINER": container,
        "DEVSTACK_VAULT_CONTAINER_PORT": port,
    }
    shell = shutil.which("sh") or "/bin/sh"
    return subprocess.run([shell, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_our_containers_port_passes_the_check(stand_in: tuple[str, str], tmp_path: Path) -> None:
    container, address = stand_in
    run = _run(tmp_path, address, container)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"root_token": TOKEN}
    assert f"{address} is Vault's container {container}" in run.stderr


def test_keys_never_go_to_another_server_at_vault_addr(stand_in: tuple[str, str], tmp_path: Path) -> None:
    container, _ = stand_in
    with FakeVault() as other:
        other.initialize()
        other.seal()
        run = _run(tmp_path, other.address, container)
        assert run.returncode == 6, run.stderr
        assert "is not where Vault's container" in run.stderr
        assert other.count("sys/unseal", "PUT", "POST") == 0
        assert other.sealed


def test_another_container_port_or_a_missing_container_is_refused(stand_in: tuple[str, str], tmp_path: Path) -> None:
    container, address = stand_in
    wrong_port = _run(tmp_path, address, container, port="8300")
    assert wrong_port.returncode == 6, wrong_port.stderr
    missing = _run(tmp_path, address, f"{NAME}-absent")
    assert missing.returncode == 6, missing.stderr
    assert "does not exist" in missing.stderr
