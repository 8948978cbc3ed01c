"""tools.bench without servers: what it changes in the plan's configs, how it interleaves, and
how it compares ratios. The script itself runs for real in tests/test_bench_real.py."""

from __future__ import annotations

from pathlib import Path

from devstack.services import pgbouncer, redis
from tests.conftest import PlanFactory, containers
from tools.bench.__main__ import compared, table
from tools.bench.suite import Result, interleaved, localise_pgbouncer, localise_redis, postgres_tuned_args


def _upload(inputs: dict, path: str) -> str:
    return next(u["content"] for u in inputs["uploads"] if u["file"] == path)


def test_redis_conf_keeps_the_plans_lines_but_the_containers_world(shared_plan: PlanFactory) -> None:
    planned = _upload(containers(shared_plan("profiles=standard", "phase=3"))["dev-redis-1"], redis.CONF_PATH)
    local = localise_redis(planned, 7001, Path("/tmp/node")).splitlines()
    assert "bind 127.0.0.1" in local
    assert "port 7001" in local
    assert "cluster-announce-ip 127.0.0.1" in local
    assert not [line for line in local if line.startswith(("aclfile", "tls-")) or "/devstack" in line]
    kept = [line for line in planned.splitlines() if line.split(" ")[0] not in ("bind", "port", "dir", "aclfile")]
    kept = [line for line in kept if not line.startswith(("tls-", "cluster-announce-ip"))]
    assert all(line in local for line in kept)  # maxmemory, eviction, persistence as planned

    with_tls = localise_redis(planned, 7001, Path("/tmp/node"), tls_port=7002).splitlines()
    assert "tls-port 7002" in with_tls
    assert "tls-cert-file /tmp/node/server.crt" in with_tls


def test_pgbouncer_ini_points_at_the_local_server(shared_plan: PlanFactory) -> None:
    planned = _upload(containers(shared_plan("profiles=minimal", "phase=3"))["dev-pgbouncer"], pgbouncer.INI_PATH)
    local = localise_pgbouncer(planned, 6001, 5001, Path("/tmp/pgb")).splitlines()
    assert "* = host=127.0.0.1 port=5001" in local
    assert "listen_addr = 127.0.0.1" in local
    assert "listen_port = 6001" in local
    assert not [line for line in local if line.startswith(("auth_query", "auth_user", "client_tls", "server_tls"))]
    for line in planned.splitlines():
        if line.startswith(("default_pool_size", "max_db_connections", "pool_mode", "max_client_conn")):
            assert line in local


def test_postgres_args_are_the_plans_but_tls() -> None:
    command = ["postgres", "-c", "shared_buffers=1MB", "-c", "ssl=on", "-c", "hba_file=/x", "-c", "work_mem=4MB"]
    assert postgres_tuned_args(command) == ["-c", "shared_buffers=1MB", "-c", "work_mem=4MB"]


def test_turns_alternate_and_medians_are_kept_apart() -> None:
    calls: list[str] = []

    def measure(name: str, value: float):
        def run() -> float:
            calls.append(name)
            return value

        return run

    a, b = interleaved(4, measure("a", 1.0), measure("b", 2.0))
    assert (a, b) == (1.0, 2.0)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_a_drop_against_the_committed_ratio_is_reported() -> None:
    result = Result("x", "tps", "A", 100.0, "B", 80.0, 1.0)
    assert compared(result, {"x": 1.0}) == "baseline 1.00: LOWER by 0.20"
    assert compared(result, {"x": 0.9}) == "baseline 0.90: ok"
    assert compared(result, {}) == "no baseline"
    text = table([result], ["sysbench: sysbench is not installed"], {"x": 1.0}, smoke=True)
    assert "| x | A: 100 tps | B: 80 tps | 0.80 | ≥ 1.00 | no |" in text
    assert "Skipped: sysbench: sysbench is not installed" in text


def test_an_unknown_group_is_refused_in_one_line(capsys) -> None:
    from tools.bench.__main__ import main

    assert main(["--only", "pgbench,nothing"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --only: unknown nothing; allowed: pgbench, sysbench, redis-benchmark\n"


def test_main_prints_each_ratio_and_writes_the_table_and_baseline(tmp_path: Path, monkeypatch, capsys) -> None:
    """The figures are made up here (run_all stands in for the servers: tests/test_bench_real.py
    runs them); what is checked is what main does with them."""
    from tools.bench import __main__ as bench

    results = [Result("pgbench direct", "tps", "phase 2", 100.0, "phase 3 tuned", 80.0, 1.0)]
    monkeypatch.setattr(bench, "run_all", lambda sizes, only: (results, ["sysbench: sysbench is not installed"]))
    out, baseline = tmp_path / "results.md", tmp_path / "baseline.json"
    args = ["--out", str(out), "--baseline", str(baseline)]
    assert bench.main([*args, "--write-baseline"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        "pgbench direct: phase 2 100 tps, phase 3 tuned 80 tps, ratio 0.80 (target ≥ 1.00, MISSED; no baseline)"
    )
    assert printed[1] == "skipped: sysbench: sysbench is not installed"
    assert "| pgbench direct | phase 2: 100 tps | phase 3 tuned: 80 tps | 0.80 |" in out.read_text()
    assert baseline.read_text() == '{\n  "pgbench direct": 0.8\n}\n'
    # The next run compares against the stored ratio.
    results[0] = Result("pgbench direct", "tps", "phase 2", 100.0, "phase 3 tuned", 60.0, 1.0)
    assert bench.main(args) == 0
    assert capsys.readouterr().out.startswith(
        "pgbench direct: phase 2 100 tps, phase 3 tuned 60 tps, ratio 0.60 (target ≥ 1.00, MISSED; baseline 0.80: LOWER"
    )


def test_main_reports_a_failed_run_or_an_unwritable_table_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from tools.bench import __main__ as bench

    def broken(sizes, only):
        raise RuntimeError("postgres did not become ready within 60s")

    monkeypatch.setattr(bench, "run_all", broken)
    assert bench.main(["--smoke", "--out", str(tmp_path / "r.md")]) == 1
    assert capsys.readouterr().err == "error: postgres did not become ready within 60s\n"
    monkeypatch.setattr(bench, "run_all", lambda sizes, only: ([], []))
    (tmp_path / "file").write_text("")
    assert bench.main(["--smoke", "--out", str(tmp_path / "file" / "r.md")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
