"""Plans under the mocks. `plan(...)` runs __main__.py afresh for the test (use it when the test
patches the program or compares two runs of the same config); `shared_plan(...)` returns a copy of
the session's one run of that exact config (tests/plancache.py), so the suite stays well under a
minute and no test sees another's edits; `cached_commands` lets the commands of tools.plan,
called in the test's process, read that cache too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import plancache
from tools.engine import PlanRun, run_program

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"

PlanFactory = Callable[..., PlanRun]

# The checks .ci/run runs, and names in its log, on their own (issue 18): test modules by name.
CHECK_GROUPS: dict[str, tuple[str, ...]] = {
    "tls": (
        "test_pki",
        "test_tls_",
        "test_vault_tls",
        "test_alertmanager_tls_real",
        "test_entrypoint_https_sh",
    ),
    "network_policy": ("test_segmentation", "test_exposure", "test_host_isolation_docker"),
}


def check_group(module: str) -> str | None:
    return next((group for group, names in CHECK_GROUPS.items() if module.startswith(names)), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = check_group(item.path.stem)
        if group is not None:
            item.add_marker(group)


def make_plan(*overrides: str, stack: str = "dev") -> PlanRun:
    return run_program(plancache.config_for(*overrides, stack=stack), stack=stack)


@pytest.fixture
def plan() -> PlanFactory:
    return make_plan


@pytest.fixture
def shared_plan() -> PlanFactory:
    return plancache.shared_plan


@pytest.fixture
def cached_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands of tools.plan (and tools.policy, which plans through it), run in the test's
    process, take each plan from scratch from the session's cache (tests/plancache.run_or_copy)
    instead of running the program again. Never in a test that patches the program."""
    import tools.plan

    monkeypatch.setattr(tools.plan, "run_program", plancache.run_or_copy)


def containers(run: PlanRun) -> dict[str, dict]:
    """Docker container name -> the inputs the provider would receive."""
    return {r.inputs["name"]: r.inputs for r in run.by_type(CONTAINER)}


@pytest.fixture(scope="module")
def toolboxes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder per module for the shell tests' PATH directories of chosen tools."""
    return tmp_path_factory.mktemp("toolboxes")


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """The busybox placeholder image on this machine's Docker engine (skips without one)."""
    from tests.dockerlab import DockerUnavailableError, docker_unavailable_reason, probe_image

    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        return probe_image()
    except DockerUnavailableError as error:
        pytest.skip(str(error))
