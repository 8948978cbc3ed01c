"""CI runs the README's test command, and that command enforces the coverage threshold."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = "--cov-fail-under=95"  # issue 17: lines and branches together


def _pytest_arguments(line: str) -> list[str]:
    words = shlex.split(line)
    return words[words.index("pytest") + 1 :]


def test_ci_runs_the_readmes_test_command_with_the_coverage_threshold() -> None:
    readme = (ROOT / "README.md").read_text().split("## Run the tests", 1)[1]
    readme_command = re.search(r"^python3 -m venv .*$", readme, re.M)
    assert readme_command is not None
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if re.match(r"^python -m pytest\b", line)]
    assert len(ci) == 1, ci
    readme_pytest = readme_command.group(0).rsplit("&&", 1)[1]
    assert _pytest_arguments(ci[0]) == _pytest_arguments(readme_pytest)
    assert {"--cov", "--cov-branch", THRESHOLD} <= set(_pytest_arguments(ci[0]))
