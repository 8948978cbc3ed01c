"""Moving between phases in one `pulumi up` each, ordered by the real Pulumi engine.

No Pulumi language host or Docker provider builds here (toolchain/versions.env), so this is the
highest rung there is: the engine itself (github.com/pulumi/pulumi/pkg/v3 at the CLI's version,
built by `go test` in tests/enginecheck) replays the offline plans' Docker networks and
containers, with their dependencies, property dependencies and delete-before-replace, against a
fake Docker daemon that refuses what Docker refuses: a network overlapping another ("Pool
overlaps with other one on this address space", seen on Docker 20.10 here), removing a network
with containers on it, a container on a missing network, a name in use. Each plan is one
`pulumi up`; the test fails on the first refused step.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_plan
from tools.plan import plan_json

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "tests" / "enginecheck"
NETWORK = "docker:index/network:Network"
ALL = "profiles=full,reference"
# Where the build cannot even start for want of Go or its modules (offline, no module cache).
UNAVAILABLE = ("module lookup disabled", "dial tcp", "no such host", "proxyconnect", "i/o timeout")


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory):
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.skip("needs Go 1.26+ on PATH (as .ci/toolchain does) to build the Pulumi engine")
    binary = tmp_path_factory.mktemp("enginecheck") / "enginecheck.test"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    build = subprocess.run(
        [go, "test", "-c", "-o", str(binary), "."],
        cwd=MODULE,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if build.returncode != 0:
        if any(reason in build.stderr for reason in UNAVAILABLE):
            pytest.skip("needs the Go module proxy or a module cache with pulumi/pkg/v3 (bash .ci/toolchain fills it)")
        pytest.fail(build.stderr[-3000:])
    folder = tmp_path_factory.mktemp("plans")

    def run(*plans: dict) -> list[str]:
        paths = []
        for i, document in enumerate(plans):
            path = folder / f"plan-{i}.json"
            path.write_text(json.dumps(document))
            paths.append(str(path))
        result = subprocess.run(
            [str(binary), "-test.run", "TestReplay"],
            env={**os.environ, "DEVSTACK_PLANS": ",".join(paths)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return re.findall(r"^update \d+: .*$", result.stdout, re.MULTILINE)

    return run


def plan(*overrides: str) -> dict:
    return plan_json(make_plan(ALL, *overrides))


def as_before_the_fix(document: dict) -> dict:
    """The plan as the program made it before the tier and link networks took their name from
    the first network: the same networks, with no property dependency on it."""
    older = copy.deepcopy(document)
    for resource in older["resources"]:
        if resource["type"] == NETWORK:
            resource["property_dependencies"]["name"] = []
    return older


def test_every_phase_move_is_one_update_back_to_phase_0_included(replay) -> None:
    phases = [0, 1, 2, 3, 4, 0, 4, 1, 0, 3]
    lines = replay(*(plan(f"phase={p}") for p in phases))
    assert len(lines) == len(phases), lines
    assert all(": ok" in line for line in lines), lines


def test_the_sub_steps_and_back(replay) -> None:
    steps = [
        plan("phase=0"),
        plan("phase=0", "features=approle=true"),
        plan("phase=0", "features=approle=true,tls=dual"),
        plan("phase=0", "features=approle=true,tls=dual,segmentation=true"),
        plan("phase=0", "features=approle=true,tls=dual"),  # 1c stepped back: flat again
    ]
    lines = replay(*steps)
    assert len(lines) == len(steps), lines
    assert all(": ok" in line for line in lines), lines


def test_without_the_dependency_docker_refuses_the_flat_network(replay) -> None:
    """What the README used to say: the flat network overlaps the tier networks, which Pulumi
    removes only at the end of the update. The harness sees it, so it can fail."""
    lines = replay(plan("phase=0"), as_before_the_fix(plan("phase=1")), plan("phase=0"))
    assert len(lines) == 3, lines
    assert ": ok" in lines[1]
    assert "update 2: failed" in lines[2]
    assert "Pool overlaps with other one on this address space" in lines[2]


def test_a_stack_made_by_the_older_program_needs_one_update_first(replay) -> None:
    """The engine reads dependents from the stack's state: one `pulumi up` with this program at
    the phase you are on (it changes nothing) records the dependency; then phase 0 works."""
    lines = replay(plan("phase=0"), as_before_the_fix(plan("phase=1")), plan("phase=1"), plan("phase=0"))
    assert len(lines) == 4, lines
    assert all(": ok" in line for line in lines), lines
