"""tools/cli.py: what every command does around its main."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tools.cli import run


def test_the_exit_status_is_mains() -> None:
    with pytest.raises(SystemExit) as caught:
        run(lambda: 3)
    assert caught.value.code == 3


def test_a_closed_pipe_ends_quietly_with_status_1(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)

    def main() -> int:
        raise BrokenPipeError

    with pytest.raises(SystemExit) as caught:
        run(main)
    assert caught.value.code == 1
    assert stderr.closed  # so Python's own note about the pipe cannot follow


def test_a_reader_that_stops_early_sees_no_traceback() -> None:
    """The real thing: `python -m tools.plan | head -1`."""
    plan = subprocess.Popen(
        [sys.executable, "-m", "tools.plan", "--json", "--set", "profiles=full,reference"],  # far above a pipe's 64 KiB
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert plan.stdout is not None
    plan.stdout.readline()
    plan.stdout.close()
    _, err = plan.communicate(timeout=120)
    assert b"Traceback" not in err
    assert plan.returncode == 1
