"""The topology pictures parse with Mermaid's own parser (the one Forgejo and GitHub render
with): the committed ones in docs/ and the plan's at each phase. A malformed chart is refused,
so the check can fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PlanFactory
from tools.graph import mermaid, topology

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tests" / "mermaid_check.mjs"
MODULES = Path(os.environ.get("DEVSTACK_MERMAID_MODULES", Path.home() / ".cache" / "devstack-mermaid" / "node_modules"))


@pytest.fixture(scope="module")
def parse():
    node = shutil.which("node")
    if node is None or not (MODULES / "mermaid").is_dir() or not (MODULES / "jsdom").is_dir():
        missing = "needs node and: npm install --prefix ~/.cache/devstack-mermaid mermaid@11.17.2 jsdom@29.1.1"
        if "DEVSTACK_MERMAID_MODULES" in os.environ:  # CI installed them (.ci/run): missing is a failure
            pytest.fail(missing)
        pytest.skip(missing)

    def run(chart: str) -> str:
        result = subprocess.run(
            [node, str(CHECK)],
            input=chart,
            env={**os.environ, "DEVSTACK_MERMAID_MODULES": str(MODULES)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return result.stdout.strip() or result.stderr.strip()

    return run


def test_the_committed_pictures_parse(parse) -> None:
    blocks = [
        block
        for page in sorted((ROOT / "docs").glob("*.md"))
        for block in re.findall(r"```mermaid\n(.*?)```", page.read_text(), re.DOTALL)
    ]
    assert blocks
    for block in blocks:
        assert parse(block) == "ok flowchart-v2"


@pytest.mark.parametrize("phase", [0, 1, 4])
def test_the_plan_pictures_parse(parse, shared_plan: PlanFactory, phase: int) -> None:
    chart = mermaid(topology(shared_plan(f"phase={phase}", "profiles=full,reference")))
    assert parse(chart) == "ok flowchart-v2"


def test_a_malformed_chart_is_refused(parse) -> None:
    assert parse('flowchart LR\n  a["x"] ---\n  subgraph\n').startswith("error Parse error")
