"""The state folder (stateDir, and <stateDir>/<stack> with the recovery file and the CA) is 0700
however the first `pulumi up` starts: the plan's own host commands, run in their order (the CA
step first from phase 1 on, then the bootstrap) under busybox sh and dash with a umask of 022,
against the fake Vault (plain HTTP at phase 0, HTTPS with the plan's Vault certificate after).

The fake stands in for Vault only as the bootstrap's peer; what is checked is the folders the
commands create on this machine.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.tls import CERT_FILE, KEY_FILE
from tests.fakevault import FakeVault
from tools.engine import PlanRun, unwrap
from tools.plan import plan_for

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = shutil.which("busybox") or ("/bin/busybox" if Path("/bin/busybox").exists() else None)
DASH = shutil.which("dash")
COMMAND = "command:local:Command"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
KEY = "tls:index/privateKey:PrivateKey"
HOST_STEPS = ("vault-ca-file", "vault-init")  # the steps that write into the state folder, in order

pytestmark = pytest.mark.real

SHELLS = {"busybox-sh": (BUSYBOX, "sh"), "dash": (DASH,)}


def _shell(name: str) -> list[str]:
    program, *rest = SHELLS[name]
    if program is None:
        pytest.skip(f"{name.split('-', maxsplit=1)[0]} is not installed (CI installs busybox-static and dash)")
    return [program, *rest]


def _sh_dir(base: Path, shell: list[str]) -> Path:
    """A PATH entry whose `sh` is the shell under test (the bootstrap step runs `sh ./scripts/...`)."""
    directory = base / "shell"
    directory.mkdir()
    (directory / "sh").write_text(f'#!/bin/sh\nexec {" ".join(shell)} "$@"\n')
    (directory / "sh").chmod(0o755)
    return directory


@contextmanager
def _vault_for(run: PlanRun, files: Path) -> Iterator[FakeVault]:
    """A fake Vault speaking what the plan's bootstrap expects: HTTPS with the plan's leaf once TLS is on."""
    address = run.one(COMMAND, "vault-init").inputs["environment"]["VAULT_ADDR"]
    if address.startswith("http://"):
        with FakeVault() as vault:
            yield vault
        return
    files.mkdir()
    intermediate = unwrap(run.one(SIGNED, "ca-intermediate").outputs["certPem"])
    (files / CERT_FILE).write_text(unwrap(run.one(SIGNED, "vault-tls").outputs["certPem"]) + intermediate)
    (files / KEY_FILE).write_text(unwrap(run.one(KEY, "vault-tls").outputs["privateKeyPem"]))
    with FakeVault(tls=(files / CERT_FILE, files / KEY_FILE)) as vault:
        yield vault


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def first_up(tmp_path: Path, shell: str, phase: int, state: Path) -> list[str]:
    """Runs the plan's host steps like a first `pulumi up`; checks the folders after each one."""
    run = plan_for("dev", [f"phase={phase}", f"stateDir={state}"])
    sh = _shell(shell)
    path = f"{_sh_dir(tmp_path, sh)}:/usr/bin:/bin"
    stack_folder = state / "dev"
    ran = []
    with _vault_for(run, tmp_path / "tls") as vault:
        for step in HOST_STEPS:
            names = [r.name for r in run.by_type(COMMAND)]
            if step not in names:
                continue
            inputs = run.one(COMMAND, step).inputs
            environment = dict(inputs["environment"])
            if "VAULT_ADDR" in environment:
                url = urlsplit(environment["VAULT_ADDR"])
                environment["VAULT_ADDR"] = f"{url.scheme}://{url.hostname}:{vault.port}"
                # No container here: the check that VAULT_ADDR is Vault's container is
                # tests/test_vault_bootstrap_docker.py's, against a real one.
                environment.pop("DEVSTACK_VAULT_CONTAINER", None)
            stdin = unwrap(inputs.get("stdin")) or ""
            done = subprocess.run(
                [*sh, "-c", inputs["create"]],
                input=stdin,
                env={"PATH": path, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), **environment},
                cwd=ROOT,
                umask=0o022,  # a usual login umask: folders would be 0755 without care
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, f"{step}: {done.stderr}"
            assert _mode(state) == 0o700, f"after {step}: {state} is {_mode(state):o}"
            assert _mode(stack_folder) == 0o700, f"after {step}: {stack_folder} is {_mode(stack_folder):o}"
            ran.append(step)
    assert _mode(stack_folder / "vault-init.json") == 0o600
    return ran


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("phase", [0, 1, 4])
def test_a_first_up_makes_the_state_folder_0700(tmp_path: Path, shell: str, phase: int) -> None:
    ran = first_up(tmp_path, shell, phase, tmp_path / "config" / "devstack")
    assert ran == (["vault-init"] if phase == 0 else ["vault-ca-file", "vault-init"])


@pytest.mark.parametrize("phase", [0, 1])
def test_a_folder_left_open_is_made_private(tmp_path: Path, phase: int) -> None:
    """What an earlier CA step left: the stack's folder 0755 (stateDir itself is the user's)."""
    state = tmp_path / "state"
    (state / "dev").mkdir(parents=True)
    state.chmod(0o700)
    (state / "dev").chmod(0o755)
    first_up(tmp_path, "busybox-sh", phase, state)
