"""The CrossGuard pack on the real engine: `pulumi preview --policy-pack policies/crossguard` of
this program (a copy, with its own stack and backend under a temporary HOME) passes when clean
and fails, naming the rule, with a violation planted through the stack's own config."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dockerlab import docker_unavailable_reason

pytestmark = [pytest.mark.real]

ROOT = Path(__file__).resolve().parent.parent
STACK = "policytest"


def pulumi_cli() -> str | None:
    built = sorted(glob.glob(str(Path.home() / ".cache/devstack-toolchain/*/bin/pulumi")))
    return built[-1] if built else shutil.which("pulumi")


Project = tuple[Path, dict[str, str], str]


@pytest.fixture(scope="module")
def cli() -> str:
    found = pulumi_cli()
    if found is None:
        pytest.skip("the Pulumi CLI is missing: run `bash .ci/toolchain`")
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return found


def _project(base: Path, cli: str, **config: str) -> Project:
    """A copy of this program with its own stack under a temporary HOME (the project's file://~
    backend lands there, never in the user's state)."""
    copy = base / "devstack"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "Pulumi.*.yaml"))
    (copy / ".venv").symlink_to(ROOT / ".venv")
    (base / "home").mkdir()
    env = {
        **os.environ,
        "HOME": str(base / "home"),
        "PULUMI_HOME": os.environ.get("PULUMI_HOME", str(Path.home() / ".pulumi")),  # plugins stay found
        "PATH": f"{Path(cli).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_CONFIG_PASSPHRASE": "crossguard-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    settings = {"phase": "1", "profiles": "minimal", "stateDir": str(base / "state"), **config}
    subprocess.run([cli, "--non-interactive", "stack", "init", STACK], cwd=copy, env=env, check=True, timeout=120)
    for key, value in settings.items():
        command = [cli, "--non-interactive", "config", "set", f"devstack:{key}", value]
        subprocess.run(command, cwd=copy, env=env, check=True, timeout=120)
    return copy, env, cli


def _preview(project: Project) -> subprocess.CompletedProcess[str]:
    """The pack's config from `tools.policy config` for the same stack, then the real preview."""
    copy, env, cli = project
    python = str(ROOT / ".venv/bin/python")
    config = subprocess.run(
        [python, "-m", "tools.policy", "config", "--stack", STACK],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    config_file = copy.parent / "policy-config.json"
    config_file.write_text(config.stdout)
    pack = ["--policy-pack", str(copy / "policies/crossguard"), "--policy-pack-config", str(config_file)]
    return subprocess.run(
        [cli, "--non-interactive", "preview", "--stack", STACK, *pack],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_a_clean_stack_passes(cli: str, tmp_path: Path) -> None:
    done = _preview(_project(tmp_path, cli))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "devstack-invariants" in output  # the pack ran
    assert "mandatory" not in output.lower()


def test_a_planted_violation_is_reported(cli: str, tmp_path: Path) -> None:
    # `18-bookworm` passes the settings (a valid tag) but floats: the pack refuses it.
    done = _preview(_project(tmp_path, cli, imageTags="postgres=18-bookworm"))
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "images-exact-tag" in output
    assert "postgres:18-bookworm" in output
