"""The session's plan cache (tests/plancache.py) hands out plans no test can spoil for another,
keyed by everything a run reads, and equal to a fresh run."""

from __future__ import annotations

import ast
import copy
import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import plancache
from tests.conftest import CONTAINER, make_plan
from tools.engine import PROJECT_DIR, PlanRun, ResourceRecord, Secret, tls_mocks
from tools.engine.context import MockState

# What the program is: the code a plan run executes (tools/engine answers for the providers).
PROGRAM_FILES = [
    PROJECT_DIR / "__main__.py",
    *sorted((PROJECT_DIR / "devstack").rglob("*.py")),
    *sorted((PROJECT_DIR / "components").rglob("*.py")),
    *sorted((PROJECT_DIR / "tools" / "engine").glob("*.py")),
]
CACHE_USERS = {"shared_plan", "shipped", "plan_run", "vault_secrets", "cached_plan", "cached_commands", "run_or_copy"}
PATCHES = {"setattr", "delattr", "setitem", "delitem", "syspath_prepend", "chdir"}


EDITS: dict[str, Callable[[PlanRun], object]] = {
    "append a resource": lambda run: run.resources.append(run.resources[0]),
    "drop a resource": lambda run: run.resources.pop(),
    "reorder": lambda run: run.resources.sort(key=lambda r: r.name),
    "replace a record's inputs": lambda run: setattr(run.resources[-1], "inputs", {}),
    "add an input": lambda run: run.by_type(CONTAINER)[0].inputs.update(leaked=True),
    "edit a nested list": lambda run: run.by_type(CONTAINER)[0].inputs["envs"].append("LEAKED=1"),
    "clear outputs": lambda run: run.by_type(CONTAINER)[0].outputs.clear(),
    "change the config": lambda run: run.config.__setitem__("devstack:phase", "4"),
    "add a stack output": lambda run: run.outputs.setdefault("leaked", 1),
    "carry the state": lambda run: run.state.resources.pop(next(iter(run.state.resources))),
    "replace the state": lambda run: setattr(run, "state", MockState()),
    "reveal a secret": lambda run: setattr(_a_secret(run), "value", "leaked"),
}


def _a_secret(run: PlanRun) -> Secret:
    return next(v for r in run.resources for v in r.outputs.values() if isinstance(v, Secret))


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_shared_plan_refuses_every_edit(edit: str) -> None:
    run = plancache.shared_plan("profiles=minimal")
    before = copy.deepcopy(run)
    with pytest.raises(TypeError, match="read-only"):
        EDITS[edit](run)
    assert plancache.shared_plan("profiles=minimal") == before


def test_a_copy_is_a_plain_plan_to_edit_and_the_shared_one_stays() -> None:
    shared = plancache.shared_plan("profiles=minimal")
    mine = copy.deepcopy(shared)
    assert type(mine) is PlanRun
    assert type(mine.resources[0]) is ResourceRecord
    assert type(mine.state) is MockState
    for edit in EDITS.values():
        edit(mine)
    assert mine != shared
    rebuilt = type(shared)(shared.project, shared.stack, shared.config, list(shared.resources[:1]), {})
    assert type(rebuilt) is PlanRun  # a new plan built from a shared one's parts is the caller's own
    rebuilt.resources.append(shared.resources[1])
    assert pickle.loads(pickle.dumps(shared)) == copy.deepcopy(shared)  # pickles as plain data too


def test_the_shared_plan_is_what_a_fresh_run_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSTACK_NOW", "2026-11-30T12:00:00Z")  # a run's id follows the clock
    shared = plancache.shared_plan("profiles=minimal", "phase=1")
    fresh = make_plan("profiles=minimal", "phase=1")
    assert shared == fresh
    assert fresh == shared
    assert shared.resources == fresh.resources
    assert shared.state == fresh.state


def test_a_command_gets_its_own_copy_and_runs_over_a_carried_state() -> None:
    config = plancache.config_for("profiles=minimal")
    mine = plancache.run_or_copy(config)
    assert type(mine) is PlanRun
    assert mine == plancache.cached_plan(config)
    planned = plancache.planned_configs()
    mine.resources.pop()  # the command's own to change, as a fresh run's would be
    assert mine != plancache.cached_plan(config)
    later = plancache.run_or_copy(plancache.config_for("profiles=minimal", "phase=1"), state=mine.state)
    assert later.state is mine.state  # it ran, over that state, and stored nothing
    assert plancache.planned_configs() == planned


def test_one_config_is_planned_once_however_it_is_spelled() -> None:
    plancache.shared_plan("profiles=minimal")
    before = plancache.planned_configs()
    # The dev stack is phase 0: both spellings are the same config, so the same entry.
    same = plancache.shared_plan("phase=0", "profiles=minimal")
    assert plancache.planned_configs() == before
    assert same is plancache.shared_plan("profiles=minimal")


@pytest.mark.parametrize("variable", plancache.ENV_INPUTS)
def test_the_environment_the_program_reads_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    config = plancache.config_for("profiles=minimal")
    monkeypatch.setenv(variable, "/one")
    first = plancache.cache_key(config)
    monkeypatch.setenv(variable, "/two")
    assert plancache.cache_key(config) != first


def test_the_mock_engines_pinned_clock_is_part_of_the_key() -> None:
    config = plancache.config_for("profiles=minimal")
    unpinned = plancache.cache_key(config)
    tls_mocks.set_clock(datetime(2030, 1, 1, tzinfo=UTC))
    try:
        assert plancache.cache_key(config) != unpinned
    finally:
        tls_mocks.set_clock(None)
    assert plancache.cache_key(config) == unpinned


def _environment_reads(path: Path) -> set[str]:
    """Names of the environment variables a module reads; "?" for one it computes."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target = None
        if isinstance(node, ast.Call):
            func = node.func
            text = ast.unparse(func)
            if text in {"os.environ.get", "os.getenv", "environ.get", "getenv"}:
                target = node.args[0] if node.args else None
            elif text.endswith("Path.home") or text == "os.path.expanduser":
                names.add("HOME")
                continue
            else:
                continue
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in {"os.environ", "environ"}:
            target = node.slice
        else:
            continue
        names.add(target.value if isinstance(target, ast.Constant) and isinstance(target.value, str) else "?")
    return names


def test_the_key_holds_every_environment_variable_the_program_reads() -> None:
    read = {name for path in PROGRAM_FILES for name in _environment_reads(path)}
    assert "DEVSTACK_NOW" in read  # the scan sees the reads it is meant to see
    assert read <= set(plancache.ENV_INPUTS), f"add to plancache.ENV_INPUTS: {read - set(plancache.ENV_INPUTS)}"


def test_the_scan_sees_each_form_of_read(tmp_path: Path) -> None:
    module = tmp_path / "reads.py"
    module.write_text(
        "import os\nfrom pathlib import Path\n"
        "a = os.environ.get('A')\nb = os.environ['B']\nc = os.getenv('C')\nd = Path.home()\n"
        "e = os.environ.get(name)\n"
    )
    assert _environment_reads(module) == {"A", "B", "C", "HOME", "?"}


def _calls(node: ast.FunctionDef) -> set[str]:
    """The functions a test calls, the names it reads and the fixtures it asks for."""
    return (
        {
            call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
        }
        | {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        | {a.arg for a in node.args.args}
    )


def _patching_cache_users(path: Path) -> list[str]:
    """Tests that patch the program (monkeypatch.setattr, …) and also read the shared plans."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.FunctionDef):
            continue
        patches = {
            call.func.attr
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and ast.unparse(call.func.value) == "monkeypatch"
        }
        if patches & PATCHES and _calls(node) & CACHE_USERS:
            found.append(f"{path.name}::{node.name}")
    return found


def test_no_test_patches_the_program_and_reads_a_shared_plan() -> None:
    """A patched program's plan would be stored for every later test, or a stale one read."""
    offenders = [
        name for path in sorted((PROJECT_DIR / "tests").glob("test_*.py")) for name in _patching_cache_users(path)
    ]
    assert offenders == [], "use conftest's `plan` (a fresh run) in a test that patches the program"


def test_the_patch_check_finds_an_offender(tmp_path: Path) -> None:
    module = tmp_path / "test_offender.py"
    module.write_text(
        "def test_x(monkeypatch, shared_plan):\n"
        "    monkeypatch.setattr(thing, 'X', 1)\n"
        "    shared_plan('phase=1')\n"
        "def test_y(monkeypatch, shared_plan):\n"
        "    monkeypatch.setenv('DEVSTACK_NOW', '2026-01-01')\n"
        "    shared_plan('phase=1')\n"
        "def test_z(monkeypatch, cached_commands):\n"
        "    monkeypatch.setattr(thing, 'X', 1)\n"
        "    main(['access'])\n"
    )
    assert _patching_cache_users(module) == ["test_offender.py::test_x", "test_offender.py::test_z"]
