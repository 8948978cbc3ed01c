"""Where the tests find the real toolchain that `.ci/toolchain` builds (the Pulumi CLI, built
from its Go module), and the environment to run it in.

The bin directory is $DEVSTACK_TOOLCHAIN_BIN when set (.ci/run sets it after building), else the
one `.ci/toolchain --bin-dir` names for this checkout's versions. A test that needs a binary
calls `binary(name)`: without the toolchain it skips with one line naming the command that
builds it; when $DEVSTACK_TOOLCHAIN_BIN is set the binary must be there, so CI fails instead of
skipping."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "toolchain"
VERSIONS = ROOT / "toolchain" / "versions.env"
BUILD_HINT = "build the toolchain first: bash .ci/toolchain"


def read_versions(path: Path = VERSIONS) -> dict[str, str]:
    """toolchain/versions.env as a dict: KEY=value lines, optional double quotes, # comments."""
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path.name}: not KEY=value: {line!r}")
        versions[key] = value.strip('"')
    return versions


def bin_dir_for_these_versions(script: Path = SCRIPT) -> Path | None:
    """The cache's bin directory that `script --bin-dir` names, or None without Go (the cache
    is keyed by `go version`; the script also looks in /usr/local/go/bin)."""
    result = subprocess.run(["bash", str(script), "--bin-dir"], capture_output=True, text=True, timeout=60, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


def bin_dir() -> Path | None:
    """The toolchain's bin directory for this checkout, or None when it cannot even be named."""
    configured = os.environ.get("DEVSTACK_TOOLCHAIN_BIN")
    return Path(configured) if configured else bin_dir_for_these_versions()


def binary(name: str) -> Path:
    """The built binary `name`; skips the test (or fails it, under $DEVSTACK_TOOLCHAIN_BIN) when
    it is missing."""
    directory = bin_dir()
    path = directory / name if directory else None
    if path is not None and os.access(path, os.X_OK):
        return path
    if os.environ.get("DEVSTACK_TOOLCHAIN_BIN"):
        pytest.fail(f"{name} is missing from $DEVSTACK_TOOLCHAIN_BIN ({directory}): run bash .ci/toolchain")
    pytest.skip(f"no {name} from .ci/toolchain: {BUILD_HINT}")


def environment(home: Path, bin_path: Path) -> dict[str, str]:
    """An environment for the real CLI that touches nothing of the user's: HOME, Pulumi's own
    folder and the state backend (home/state, which must exist) in the test's folder, the
    toolchain first on PATH, no plugin downloads, no update check.

    PULUMI_BACKEND_URL, not `pulumi login`: Pulumi.yaml's `backend.url: file://~` wins over a
    login, and the CLI takes `~` from the user database, not $HOME, so a test that only logged in
    would write into the developer's real ~/.pulumi."""
    (home / "state").mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env.update(
        HOME=str(home),
        PATH=f"{bin_path}{os.pathsep}{env.get('PATH', '')}",
        PULUMI_HOME=str(home / ".pulumi"),
        PULUMI_BACKEND_URL=f"file://{home / 'state'}",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_SKIP_UPDATE_CHECK="true",
    )
    return env
