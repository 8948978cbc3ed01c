"""python -m tools.bench [--smoke] [--only pgbench,sysbench,redis-benchmark] [--out FILE] [--write-baseline]

Baseline (phase 2) against tuned (phase 3) and plaintext against TLS, on Debian's servers started
on 127.0.0.1 with the plan's own configs (tools/bench/suite.py). Prints each figure with its
ratio and the committed baseline's ratio beside it, and writes a Markdown results table with the
machine's description. Figures are noisy on a shared machine: the ratios are compared, never
the absolute rates, and nothing here fails on a slower run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tools.bench.suite import BENCHES, FULL, SMOKE, Result, run_all
from tools.cli import run
from tools.servers import cgroups_available

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "benchmarks" / "baseline.json"
RESULTS = ROOT / "benchmarks" / "results.md"
DRIFT = 0.15  # a ratio this much below the committed one is reported


def machine() -> str:
    cpu = "unknown CPU"
    with_cpu = Path("/proc/cpuinfo")
    if with_cpu.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", with_cpu.read_text(), re.M)
        cpu = found.group(1).strip() if found else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"^MemTotal:\s+(\d+) kB", meminfo.read_text(), re.M)
        memory = f", {int(found.group(1)) // 1024 // 1024} GiB" if found else ""
    limits = "memory cgroups with each container's limit" if cgroups_available() else "no cgroups (servers' own limits)"
    return f"{platform.system()} {platform.release()}, {cpu} x{os.cpu_count()}{memory}; {limits}"


def versions() -> str:
    found = []
    for argv in (
        ["pgbench", "--version"],
        ["mariadbd", "--version"],
        ["redis-server", "--version"],
        ["sysbench", "--version"],
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError:
            continue
        found.append(out.splitlines()[0][:60] if out else argv[0])
    return "; ".join(found)


def compared(result: Result, baseline: dict[str, float]) -> str:
    before = baseline.get(result.name)
    if before is None:
        return "no baseline"
    if result.ratio < before - DRIFT:
        return f"baseline {before:.2f}: LOWER by {before - result.ratio:.2f}"
    return f"baseline {before:.2f}: ok"


def table(results: list[Result], skipped: list[str], baseline: dict[str, float], smoke: bool) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run {when}{' (smoke: too short to mean anything)' if smoke else ''} on {machine()}.",
        f"Servers: {versions()}.",
        "",
        "| Benchmark | A | B | B/A | Target | Met | Against the committed ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.a_label}: {r.a:,.0f} {r.unit} | {r.b_label}: {r.b:,.0f} {r.unit} | {r.ratio:.2f} "
            f"| ≥ {r.target:.2f} | {'yes' if r.met else 'no'} | {compared(r, baseline)} |"
        )
    lines += [f"\nSkipped: {line}" for line in skipped]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=(__doc__ or "").split("\n\n")[1])
    parser.add_argument("--smoke", action="store_true", help="one short turn each: proves the script runs")
    parser.add_argument("--only", default="", help="comma-separated: pgbench, sysbench, redis-benchmark")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"the results table (default {RESULTS.relative_to(ROOT)})"
    )
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="committed ratios to compare against")
    parser.add_argument("--write-baseline", action="store_true", help="store this run's ratios as the baseline")
    args = parser.parse_args(argv)
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
    only = [name.strip() for name in args.only.split(",") if name.strip()] or None
    unknown = sorted(set(only or ()) - set(BENCHES))
    if unknown:
        print(f"error: --only: unknown {', '.join(unknown)}; allowed: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    try:
        results, skipped = run_all(SMOKE if args.smoke else FULL, only)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for r in results:
        print(
            f"{r.name}: {r.a_label} {r.a:,.0f} {r.unit}, {r.b_label} {r.b:,.0f} {r.unit}, "
            f"ratio {r.ratio:.2f} (target ≥ {r.target:.2f}{'' if r.met else ', MISSED'}; {compared(r, baseline)})"
        )
    for line in skipped:
        print(f"skipped: {line}")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table(results, skipped, baseline, args.smoke))
        print(f"table written to {args.out}")
        if args.write_baseline and not args.smoke:
            args.baseline.write_text(json.dumps({r.name: round(r.ratio, 2) for r in results}, indent=2) + "\n")
            print(f"baseline written to {args.baseline}")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        run(main)
    except KeyboardInterrupt:  # a benchmark stopped by hand
        sys.exit(130)
