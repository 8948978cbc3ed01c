"""Roll the stack back to an earlier update from `pulumi stack history`.

    python -m tools.rollback [--stack dev]                 # list updates: version, phase, commit
    python -m tools.rollback --to VERSION [--yes]          # show what changes, then roll back

Rolling back to VERSION means: that update's stack config, applied by the program as it was at
that update's git commit (checked out in a temporary git worktree, so your checkout is left
alone), with `pulumi up`. You confirm first unless --yes. Volumes, the KV mount and the
credentials are never deleted by any phase (see README), so a rollback changes containers,
networks and Vault identities, not data.

Back to phase 0 from a segmented phase is that one `pulumi up` too: the program has the engine
delete the tier and link networks, which the flat network overlaps, before it creates the flat
one (components/network.py; docs/phases.md, "Rolling back").
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools.cli import run

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Update:
    version: int
    kind: str
    result: str
    start_time: str
    commit: str | None  # git.head recorded by the CLI
    dirty: bool
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        return self.config.get("devstack:phase", "0")


class StackAccess(Protocol):
    """What the rollback needs from Pulumi; the Automation API in real use, a fake in tests."""

    def history(self) -> list[Update]: ...

    def up(self, work_dir: Path, config: Mapping[str, str]) -> None: ...


def _config_values(config: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for key, item in config.items():
        value = getattr(item, "value", item)
        values[key] = value if isinstance(value, str) else str(value)
    return values


class AutomationStack:
    """StackAccess through Pulumi's Automation API (needs the Pulumi CLI)."""

    def __init__(self, stack: str, work_dir: Path = PROJECT_DIR) -> None:
        from pulumi import automation as auto

        self._auto = auto
        self.name = stack
        self.stack = auto.select_stack(stack_name=stack, work_dir=str(work_dir))

    def history(self) -> list[Update]:
        updates = []
        summaries = self.stack.history(show_secrets=False)  # newest first
        # The local file backend (devstack's) reports version 0 for every update: number them
        # as Pulumi Cloud would, 1 for the oldest, so that --to names exactly one update.
        numbered = all(s.version for s in summaries)
        for position, summary in enumerate(summaries):
            environment = summary.environment or {}
            updates.append(
                Update(
                    version=(summary.version or 0) if numbered else len(summaries) - position,
                    kind=str(summary.kind),
                    result=str(summary.result),
                    start_time=str(summary.start_time),
                    commit=environment.get("git.head"),
                    dirty=environment.get("git.dirty") == "true",
                    config=_config_values(summary.config or {}),
                )
            )
        return updates

    def up(self, work_dir: Path, config: Mapping[str, str]) -> None:
        stack = self._auto.select_stack(stack_name=self.name, work_dir=str(work_dir))
        stack.set_all_config({k: self._auto.ConfigValue(value=v) for k, v in config.items()})
        stack.up(on_output=print)


def render_history(updates: Sequence[Update]) -> str:
    lines = [f"{'version':>7}  {'kind':<9} {'result':<10} {'phase':<5} {'commit':<12} started"]
    for u in sorted(updates, key=lambda u: u.version, reverse=True):
        commit = (u.commit or "-")[:10] + ("+" if u.dirty else "")
        lines.append(f"{u.version:>7}  {u.kind:<9} {u.result:<10} {u.phase:<5} {commit:<12} {u.start_time}")
    return "\n".join(lines)


def config_changes(current: Mapping[str, str], target: Mapping[str, str]) -> list[str]:
    changes = []
    for key in sorted(set(current) | set(target)):
        if current.get(key) != target.get(key):
            changes.append(f"  {key}: {current.get(key, '(unset)')} -> {target.get(key, '(unset)')}")
    return changes


@dataclass
class RollbackPlan:
    target: Update
    changes: list[str]


def plan_rollback(access: StackAccess, version: int, stack: str) -> RollbackPlan:
    updates = access.history()
    target = next((u for u in updates if u.version == version), None)
    if target is None:
        raise SystemExit(f"error: no update {version} in the history of {stack}")
    if target.commit is None:
        raise SystemExit(f"error: update {version} recorded no git commit; roll back by config instead")
    current = max(updates, key=lambda u: u.version)
    return RollbackPlan(target, config_changes(current.config, target.config))


@contextmanager
def worktree(commit: str, repo: Path = PROJECT_DIR):
    with tempfile.TemporaryDirectory(prefix="devstack-rollback-") as parent:
        path = Path(parent) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(path), commit], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)], check=False)


def execute(
    access: StackAccess,
    plan: RollbackPlan,
    confirm: Callable[[str], bool],
    checkout: Callable[[str], Any] = worktree,
) -> bool:
    print(f"Rolling back to update {plan.target.version} (phase {plan.target.phase}, commit {plan.target.commit}):")
    print("\n".join(plan.changes) or "  config unchanged")
    if not confirm("Proceed? [y/N] "):
        print("Nothing changed.")
        return False
    assert plan.target.commit is not None
    with checkout(plan.target.commit) as tree:
        access.up(Path(tree), plan.target.config)
    return True


def _ask(prompt: str) -> bool:
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def main(argv: Sequence[str] | None = None, access: StackAccess | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.rollback", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--to", type=int, metavar="VERSION", help="the update to roll back to")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    if access is None:
        if shutil.which("pulumi") is None:
            print(f"error: {CLI_NEEDED}", file=sys.stderr)
            return 2
        try:
            access = AutomationStack(args.stack)
        except Exception as error:  # the Automation API's CommandError: the CLI said no
            print(f"error: {_cli_message(error)}", file=sys.stderr)
            return 2
    if args.to is None:
        print(render_history(access.history()))
        return 0
    plan = plan_rollback(access, args.to, args.stack)
    done = execute(access, plan, (lambda _prompt: True) if args.yes else _ask)
    return 0 if done else 1


CLI_NEEDED = (
    "tools.rollback drives the Pulumi CLI, and `pulumi` is not on PATH: install it "
    "(or put the one .ci/toolchain builds, ~/.cache/devstack-toolchain/*/bin, on PATH)"
)


def _cli_message(error: Exception) -> str:
    """The CLI's own `error:` line from an Automation API failure, else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines()]
    said = [line.removeprefix("stderr:").strip() for line in lines if "error:" in line]
    text = said[-1] if said else (lines[0] if lines else type(error).__name__)
    return text.removeprefix("error:").strip()


if __name__ == "__main__":
    run(main)
