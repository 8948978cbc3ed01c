"""tools.rollback against a fake workspace (the Automation API needs the Pulumi CLI)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tools import rollback
from tools.rollback import Update, execute, plan_rollback, render_history

ROOT = Path(__file__).resolve().parent.parent
PHASE0 = {"devstack:phase": "0", "devstack:profiles": "standard"}
PHASE1 = {"devstack:phase": "1", "devstack:profiles": "standard"}


class FakeStack:
    def __init__(self, updates: list[Update]) -> None:
        self.updates = updates
        self.calls: list[tuple[str, object]] = []

    def history(self) -> list[Update]:
        return self.updates

    def up(self, work_dir: Path, config: Mapping[str, str]) -> None:
        self.calls.append(("up", (work_dir, dict(config))))


def history() -> list[Update]:
    return [
        Update(1, "update", "succeeded", "2026-11-01", "aaaa1111", False, PHASE0),
        Update(2, "update", "succeeded", "2026-11-02", "bbbb2222", False, PHASE1),
        Update(3, "update", "failed", "2026-11-03", "cccc3333", True, {**PHASE1, "devstack:phase": "2"}),
    ]


@contextmanager
def fake_checkout(commit: str) -> Iterator[Path]:
    yield Path(f"/tmp/worktree-{commit}")


def test_history_lists_phase_and_commit() -> None:
    text = render_history(history())
    lines = text.splitlines()
    assert lines[1].split()[:5] == ["3", "update", "failed", "2", "cccc3333+"]
    assert lines[3].split()[:5] == ["1", "update", "succeeded", "0", "aaaa1111"]


def test_rollback_to_phase0_is_one_up_with_that_updates_config_at_its_commit() -> None:
    """From a segmented phase too: the program has the engine delete the tier and link networks
    before it creates the flat one (tests/test_engine_order_real.py), so nothing is removed
    beforehand: a targeted destroy with its dependents would reach the protected KV mount."""
    stack = FakeStack(history())
    plan = plan_rollback(stack, 1, "dev")
    assert plan.changes == ["  devstack:phase: 2 -> 0"]
    assert execute(stack, plan, confirm=lambda _: True, checkout=fake_checkout)
    assert stack.calls == [("up", (Path("/tmp/worktree-aaaa1111"), PHASE0))]


def test_rollback_between_segmented_phases() -> None:
    stack = FakeStack(history())
    execute(stack, plan_rollback(stack, 2, "dev"), confirm=lambda _: True, checkout=fake_checkout)
    assert stack.calls == [("up", (Path("/tmp/worktree-bbbb2222"), PHASE1))]


def test_declining_changes_nothing() -> None:
    stack = FakeStack(history())
    assert not execute(stack, plan_rollback(stack, 1, "dev"), confirm=lambda _: False, checkout=fake_checkout)
    assert stack.calls == []


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no update 9"):
        plan_rollback(FakeStack(history()), 9, "dev")


def test_main_lists_and_rolls_back_with_yes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = FakeStack(history())
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
    for phrase in ("pulumi stack history", "worktree", "--yes", "--to VERSION", "one `pulumi up`"):
        assert phrase in result.stdout
