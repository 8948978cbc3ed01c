"""The mutation check's own rules (tests/mutations.py), without running any mutation: a text must
be found exactly once, a pass is MISSED, a skip or an empty selection is an error, never a catch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import mutations
from tests.mutations import MUTATIONS, _locate, _verdict


def _result(status: int, stdout: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], status, stdout, "")


def test_a_failing_test_is_a_catch_with_its_assertion() -> None:
    out = "F\nE   AssertionError: TLS 1.1 accepted\nFAILED tests/x.py::test_y[phase4] - AssertionError\n1 failed"
    verdict, detail = _verdict(_result(1, out))
    assert verdict == "caught"
    assert detail == "FAILED tests/x.py::test_y[phase4] | AssertionError: TLS 1.1 accepted"


def test_passing_tests_are_missed() -> None:
    assert _verdict(_result(0, "..\n"))[0] == "MISSED"


@pytest.mark.parametrize(
    ("status", "stdout"),
    [
        (0, "s\nSKIPPED [1] tests/x.py:3: redis-server missing\n"),  # a skip proves nothing
        (5, "no tests ran\n"),  # the selection matched nothing
        (4, "ERROR: Wrong expression passed to '-k'\n"),
    ],
)
def test_tests_that_did_not_run_are_an_error(status: int, stdout: str) -> None:
    assert _verdict(_result(status, stdout))[0] == "error"


def test_source_text_must_occur_exactly_once_outside_tests(tmp_path: Path) -> None:
    (tmp_path / "devstack").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "devstack" / "a.py").write_text("x = 1\ny = 2\ny = 2\n")
    (tmp_path / "tests" / "t.py").write_text("x = 1\n")
    files = ["devstack/a.py", "tests/t.py"]
    path, where = _locate(tmp_path, files, "x = 1")
    assert path == tmp_path / "devstack" / "a.py"
    assert where == "devstack/a.py"
    assert _locate(tmp_path, files, "y = 2")[0] is None  # twice: ambiguous
    missing, why = _locate(tmp_path, files, "z = 3")
    assert missing is None
    assert "update the mutation" in why


def test_every_mutation_is_named_once_and_finds_its_text_in_this_checkout() -> None:
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names))
    files = mutations._project_files()
    root = mutations.PROJECT_DIR
    for mutation in MUTATIONS:
        for old, new in ((mutation.old, mutation.new), *mutation.more):
            assert old != new, mutation.name
            assert _locate(root, files, old)[0] is not None, mutation.name
        assert mutation.tests, mutation.name
