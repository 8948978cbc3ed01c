"""The benchmark script's smoke run, for real: every benchmark starts its servers from the plan's
configs, measures both sides once for a second, and writes its table; a benchmark whose tool is
missing says so in the table. So the script cannot rot between the runs that mean something."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench.__main__ import main

pytestmark = pytest.mark.real

BENCHMARKS = {  # row -> the group a missing tool skips
    "pgbench direct": "pgbench",
    "pgbench via PgBouncer": "pgbench",
    "pgbench direct, TLS": "pgbench",
    "sysbench OLTP read/write (MariaDB)": "sysbench",
    "redis-benchmark standalone": "redis-benchmark",
    "redis-benchmark cluster (3 nodes)": "redis-benchmark",
    "redis-benchmark standalone, TLS": "redis-benchmark",
}


def test_smoke_run_measures_every_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.md"
    assert main(["--smoke", "--out", str(out), "--baseline", str(tmp_path / "none.json")]) == 0
    text = out.read_text()
    skipped = [line for line in text.splitlines() if line.startswith("Skipped: ")]
    if len(skipped) == 3:
        pytest.skip("; ".join(skipped))
    assert "(smoke: too short to mean anything)" in text
    for name, group in BENCHMARKS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| {name} |")), None)
        if row is None:
            assert any(line.startswith(f"Skipped: {group}: ") for line in skipped), name
            continue
        ratio = float(row.split("|")[4])
        assert ratio > 0, row
    printed = capsys.readouterr().out
    assert f"table written to {out}" in printed
