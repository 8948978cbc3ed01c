"""tools.rollback against a fake workspace (the Automation API needs the Pulumi CLI)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import NETWORK, PlanFactory
from tools import rollback
from tools.rollback import Update, execute, plan_rollback, render_history

ROOT = Path(__file__).resolve().parent.parent
PHASE0 = {"devstack:phase": "0", "devstack:profiles": "standard"}
PHASE1 = {"devstack:phase": "1", "devstack:profiles": "standard"}


class FakeStack:
    def __init__(self, updates: list[Update], networks: dict[str, str]) -> None:
        self.updates = updates
        self.networks = networks
        self.calls: list[tuple[str, object]] = []

    def history(self) -> list[Update]:
        return self.updates

    def network_urns(self) -> dict[str, str]:
        return self.networks

    def destroy(self, targets: Sequence[str]) -> None:
        self.calls.append(("destroy", list(targets)))

    def up(self, work_dir: Path, config: Mapping[str, str]) -> None:
        self.calls.append(("up", (work_dir, dict(config))))


def history() -> list[Update]:
    return [
        Update(1, "update", "succeeded", "2026-11-01", "aaaa1111", False, PHASE0),
        Update(2, "update", "succeeded", "2026-11-02", "bbbb2222", False, PHASE1),
        Update(3, "update", "failed", "2026-11-03", "cccc3333", True, {**PHASE1, "devstack:phase": "2"}),
    ]


_NETWORK_URN = "urn:pulumi:dev::devstack::devstack:platform:Platform$devstack:network:NetworkTopology"
TIER_NETWORKS = {
    "dev-vault-network": f"{_NETWORK_URN}$docker:index/network:Network::network",
    "dev-data-network": f"{_NETWORK_URN}$docker:index/network:Network::data-network",
}


@contextmanager
def fake_checkout(commit: str) -> Iterator[Path]:
    yield Path(f"/tmp/worktree-{commit}")


def test_history_lists_phase_and_commit() -> None:
    text = render_history(history())
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["3", "update", "failed", "2", "cccc3333+"]
    assert lines[3].split()[:5] == ["1", "update", "succeeded", "0", "aaaa1111"]


def test_rollback_to_phase0_removes_tier_networks_first_then_runs_up_at_that_commit() -> None:
    stack = FakeStack(history(), TIER_NETWORKS)
    plan = plan_rollback(stack, 1, "dev")
    assert plan.changes == ["  devstack:phase: 2 -> 0"]
    assert sorted(plan.networks_first) == sorted(TIER_NETWORKS.values())
    assert execute(stack, plan, confirm=lambda _: True, checkout=fake_checkout)
    assert stack.calls == [
        ("destroy", plan.networks_first),
        ("up", (Path("/tmp/worktree-aaaa1111"), PHASE0)),
    ]


@pytest.mark.parametrize("current_phase", [0, 1, 4])
def test_rollback_to_phase0_never_destroys_the_flat_network(shared_plan: PlanFactory, current_phase: int) -> None:
    """With the networks the plan really has at the current phase (names and URNs), not a list
    made up here: the flat network is never among those removed first (with --target-dependents
    that would take every container with it), and from phase 0 nothing is removed at all."""
    run = shared_plan("profiles=full,reference", f"phase={current_phase}")  # every network there is
    networks = {r.inputs["name"]: r.urn for r in run.by_type(NETWORK)}
    plan = plan_rollback(FakeStack(history(), networks), 1, "dev")
    assert networks.get(rollback.FLAT_NETWORK, "(none)") not in plan.networks_first
    if current_phase == 0:
        assert plan.networks_first == []
    else:
        assert sorted(plan.networks_first) == sorted(networks.values())  # each overlaps the flat subnet


def test_rollback_between_segmented_phases_needs_no_destroy() -> None:
    stack = FakeStack(history(), TIER_NETWORKS)
    plan = plan_rollback(stack, 2, "dev")
    assert plan.networks_first == []
    execute(stack, plan, confirm=lambda _: True, checkout=fake_checkout)
    assert stack.calls == [("up", (Path("/tmp/worktree-bbbb2222"), PHASE1))]


def test_declining_changes_nothing() -> None:
    stack = FakeStack(history(), TIER_NETWORKS)
    assert not execute(stack, plan_rollback(stack, 1, "dev"), confirm=lambda _: False, checkout=fake_checkout)
    assert stack.calls == []


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no update 9"):
        plan_rollback(FakeStack(history(), {}), 9, "dev")


def test_main_lists_and_rolls_back_with_yes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = FakeStack(history(), {})
    assert rollback.main([], access=stack) == 0
    assert "cccc3333" in capsys.readouterr().out
    monkeypatch.setattr(rollback, "worktree", fake_checkout)
    monkeypatch.setattr(
        rollback, "execute", lambda access, plan, confirm: execute(access, plan, confirm, fake_checkout)
    )
    assert rollback.main(["--to", "2", "--yes"], access=stack) == 0
    assert stack.calls[-1][0] == "up"


def test_worktree_checks_out_the_commit_and_cleans_up(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.txt").write_text("one")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (repo / "f.txt").write_text("two")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    with rollback.worktree(first, repo) as tree:
        assert (tree / "f.txt").read_text() == "one"
        assert (repo / "f.txt").read_text() == "two"
    assert not tree.exists()
    listed = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert len(listed.strip().splitlines()) == 1


def test_help_documents_the_flow() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.rollback", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for phrase in ("pulumi stack history", "worktree", "--yes", "--to VERSION", "target-dependents"):
        assert phrase in result.stdout
