"""The CrossGuard pack on the real engine: `pulumi preview --policy-pack policies/crossguard` of
this program (a copy, with its own stack and backend under a temporary HOME) passes when clean
and fails, naming the rule, with a violation planted through the stack's own config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dockerlab import docker_unavailable_reason
from tests.toolchain import bin_dir

pytestmark = [pytest.mark.real]

ROOT = Path(__file__).resolve().parent.parent
STACK = "policytest"


PLUGINS = ("pulumi-language-python", *(f"pulumi-resource-{p}" for p in ("docker", "vault", "tls", "command", "random")))


Project = tuple[Path, dict[str, str], str]


@pytest.fixture(scope="module")
def cli() -> str:
    directory = bin_dir()  # tests/toolchain.py: $DEVSTACK_TOOLCHAIN_BIN, else this checkout's cache
    pulumi = directory / "pulumi" if directory else None
    if pulumi is None or not os.access(pulumi, os.X_OK):
        if os.environ.get("DEVSTACK_TOOLCHAIN_BIN"):
            pytest.fail(f"pulumi is missing from $DEVSTACK_TOOLCHAIN_BIN ({directory}): run bash .ci/toolchain")
        pytest.skip("the Pulumi CLI is missing: run `bash .ci/toolchain`")
    search = f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"
    missing = [name for name in PLUGINS if shutil.which(name, path=search) is None]
    if missing:
        # The module proxy refused these so far (toolchain/versions.env): nothing to run the program with.
        pytest.skip(f"{', '.join(missing)} missing beside the CLI: run `bash .ci/toolchain` once it builds them")
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return str(pulumi)


def _project(base: Path, cli: str, **config: str) -> Project:
    """A copy of this program with its own stack, HOME, Pulumi folder and file backend under
    base: nothing of the user's is read or written (PULUMI_BACKEND_URL, because Pulumi.yaml's
    file://~ wins over a login and ~ comes from the user database, not $HOME)."""
    copy = base / "devstack"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "Pulumi.*.yaml"))
    (copy / ".venv").symlink_to(ROOT / ".venv")
    (base / "state").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env.update(
        HOME=str(base),
        PATH=f"{Path(cli).parent}{os.pathsep}{env.get('PATH', '')}",
        PULUMI_HOME=str(base / ".pulumi"),
        PULUMI_BACKEND_URL=f"file://{base / 'state'}",
        PULUMI_CONFIG_PASSPHRASE="crossguard-test",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_SKIP_UPDATE_CHECK="true",
    )
    settings = {"phase": "1", "profiles": "minimal", "stateDir": str(base / "devstack-state"), **config}
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
