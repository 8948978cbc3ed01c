"""The offline diff follows a resource that moved (Pulumi aliases) and a change of provider, as
`pulumi preview` would: programs of our own run on the mock engine, the second over the first's
state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.diff import diff_plans
from tools.engine import PlanRun, run_program
from tools.plan import render_diff

BEFORE = """
import pulumi
import pulumi_docker as docker

docker.Network("kept", name="lab-kept")
docker.Network("renamed", name="lab-renamed")
docker.Network("moved", name="lab-moved")
docker.Network("by-urn", name="lab-by-urn")
docker.Network("gone", name="lab-gone")
docker.Network("provided", name="lab-provided")
"""

AFTER = """
import pulumi
import pulumi_docker as docker


class Box(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("lab:box:Box", name, None, None)


box = Box("box")
docker.Network("kept", name="lab-kept")
# Renamed: the alias names the old name.
docker.Network("renamed-now", name="lab-renamed", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="renamed")]))
# Moved into a component: the alias says it had no parent but the stack; its name changes too.
docker.Network(
    "moved",
    name="lab-moved-2",
    opts=pulumi.ResourceOptions(parent=box, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]),
)
# An alias given as the old URN itself.
docker.Network(
    "by-urn-now",
    name="lab-by-urn",
    opts=pulumi.ResourceOptions(aliases=["urn:pulumi:dev::devstack::docker:index/network:Network::by-urn"]),
)
docker.Network("new", name="lab-new")
provider = docker.Provider("other-daemon", host="unix:///run/other.sock")
docker.Network("provided", name="lab-provided", opts=pulumi.ResourceOptions(provider=provider))
"""


def _run(tmp_path: Path, source: str, name: str, before: PlanRun | None = None) -> PlanRun:
    main = tmp_path / f"{name}.py"
    main.write_text(source)
    return run_program({}, main=main, state=before.state if before else None)


@pytest.fixture
def runs(tmp_path: Path) -> tuple[PlanRun, PlanRun]:
    before = _run(tmp_path, BEFORE, "before")
    return before, _run(tmp_path, AFTER, "after", before)


def test_aliases_carry_resources_to_their_new_urn(runs: tuple[PlanRun, PlanRun]) -> None:
    before, after = runs
    changes = {(c.name, c.action): c for c in diff_plans(before, after).changes}
    moved = changes.pop(("moved", "replace"))  # a network's name forces a new one
    assert moved.properties == ("name",)
    assert moved.old_urn == "urn:pulumi:dev::devstack::docker:index/network:Network::moved"
    assert moved.urn.endswith("::lab:box:Box$docker:index/network:Network::moved")
    provided = changes.pop(("provided", "replace"))
    assert provided.properties == ("(provider)",)
    # kept, renamed and by-urn are the same networks under new URNs: no change at all
    assert set(changes) == {("new", "create"), ("gone", "delete"), ("other-daemon", "create"), ("box", "create")}


def test_render_shows_where_a_moved_resource_was(runs: tuple[PlanRun, PlanRun]) -> None:
    text = render_diff(diff_plans(*runs))
    assert " (was urn:pulumi:dev::devstack::docker:index/network:Network::moved)" in text
    assert "docker:index/network:Network provided [(provider)]" in text


def test_no_change_is_said_in_one_line(tmp_path: Path) -> None:
    before = _run(tmp_path, BEFORE, "before")
    assert render_diff(diff_plans(before, _run(tmp_path, BEFORE, "again", before))) == "Resources: no changes"
