"""The benchmarks: each a pair of configurations of one server, measured in turns in one run.

The configurations come from the offline plan, as the containers would get them: the phase-2
plan (the image's defaults: the baseline) against the phase-3 plan (tuned to the container's
limit), and plaintext against TLS with the plan's own certificates. Only what names the
container's world is localised (addresses, ports, directories, the secrets' files); each server
runs in a memory cgroup with its container's limit where this machine allows it.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import statistics
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.services import mysql, pgbouncer, redis
from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE
from tools.engine import unwrap
from tools.plan import plan_for
from tools.servers import (
    LOCALHOST,
    Limit,
    ServerUnavailableError,
    accepts,
    checked,
    find,
    free_port,
    postgres_bin,
    run_as_server,
    server_dir,
    server_process,
    wait_until,
    write_owned,
)

CONTAINER = "docker:index/container:Container"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
KEY = "tls:index/privateKey:PrivateKey"
ROOT = "tls:index/selfSignedCert:SelfSignedCert"


@dataclass(frozen=True)
class Sizes:
    rounds: int  # turns per configuration, interleaved A B, B A, ...
    seconds: int  # each turn's length
    pgbench_scale: int
    sysbench_rows: int
    redis_requests: int


FULL = Sizes(rounds=3, seconds=4, pgbench_scale=10, sysbench_rows=20000, redis_requests=100000)
START_TIMEOUT = 60.0  # a cold PostgreSQL or MariaDB on a busy 2-core machine
SMOKE = Sizes(rounds=1, seconds=1, pgbench_scale=1, sysbench_rows=1000, redis_requests=2000)


@dataclass(frozen=True)
class Result:
    name: str
    unit: str
    a_label: str
    a: float
    b_label: str
    b: float
    target: float  # b / a should reach it
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.b / self.a if self.a else 0.0

    @property
    def met(self) -> bool:
        return self.ratio >= self.target


# --- what the plan gives each container -----------------------------------------------------------


class Plans:
    """The containers of the phase-2, -3 and -4 plans, and the plan's certificates, read once."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, ...], dict[str, dict]] = {}
        self._files: dict[str, str] | None = None

    def container(self, name: str, *overrides: str) -> dict:
        if overrides not in self._runs:
            run = plan_for("dev", list(overrides))
            self._runs[overrides] = {r.inputs["name"]: r.inputs for r in run.by_type(CONTAINER)}
        return self._runs[overrides][f"dev-{name}"]

    def upload(self, name: str, path: str, *overrides: str) -> str:
        uploads = self.container(name, *overrides).get("uploads") or []
        return next(u["content"] for u in uploads if u["file"] == path)

    def tls_files(self, service: str) -> dict[str, str]:
        run = plan_for("dev", ["phase=3", "profiles=standard"])
        intermediate = unwrap(run.one(SIGNED, "ca-intermediate").outputs["certPem"])
        (root,) = run.by_type(ROOT)
        return {
            CERT_FILE: unwrap(run.one(SIGNED, f"{service}-tls").outputs["certPem"]) + intermediate,
            KEY_FILE: unwrap(run.one(KEY, f"{service}-tls").outputs["privateKeyPem"]),
            CA_FILE: unwrap(root.outputs["certPem"]),
        }


def postgres_tuned_args(command: list[str]) -> list[str]:
    """The plan's `-c` settings but its TLS switches (their files are the container's)."""
    pairs = [arg for flag, arg in itertools.pairwise(command) if flag == "-c"]
    kept = [p for p in pairs if not p.startswith("ssl") and not p.startswith("hba_file")]
    return [arg for pair in kept for arg in ("-c", pair)]


def mysql_tuned_args(command: list[str]) -> list[str]:
    return [a for a in command if a.startswith(("--innodb-", "--max-connections"))]


def localise_redis(conf: str, port: int, base: Path, tls_port: int | None = None) -> str:
    """The plan's redis.conf for a node on 127.0.0.1:port with its files in `base`. The ACL file
    (the wrapper's, from Vault) is left out: the default user, loopback only, protected mode.
    Without `tls_port` the TLS lines go too."""
    rewrites = {
        "bind": f"bind {LOCALHOST}",
        "port": f"port {port}",
        "dir": f"dir {base}",
        "cluster-announce-ip": f"cluster-announce-ip {LOCALHOST}",
        "tls-port": f"tls-port {tls_port}",
    }
    out = []
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key == "aclfile" or (key.startswith("tls-") and tls_port is None):
            continue
        out.append(rewrites.get(key, line).replace("/devstack/tls", str(base)))
    return "\n".join(out) + '\nlogfile ""\n'


def localise_pgbouncer(ini: str, port: int, pg_port: int, base: Path) -> str:
    """The plan's pgbouncer.ini towards a local PostgreSQL. Bench-only: `trust` on loopback
    instead of the auth_query lookup (which needs the platform's accounts), and no TLS."""
    rewrites = {
        "*": f"* = host={LOCALHOST} port={pg_port}",
        "listen_addr": f"listen_addr = {LOCALHOST}",
        "listen_port": f"listen_port = {port}",
        "auth_type": "auth_type = trust",
        "auth_file": f"auth_file = {base}/userlist.txt",
    }
    dropped = ("auth_user", "auth_query", "auth_dbname")
    out = []
    for line in ini.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in dropped or key.startswith(("client_tls", "server_tls")):
            continue
        out.append(rewrites.get(key, line))
    out.insert(out.index("[pgbouncer]") + 1, f"unix_socket_dir = {base}")
    return "\n".join(out) + "\n"


# --- servers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _running(argv: list[str], log: Path, ready: Callable[[], bool], limit_mb: int) -> Iterator[None]:
    """The server in its container's memory limit (where cgroups allow), ready, stopped after."""
    with server_process(argv, log, limit=Limit(limit_mb)) as process:
        wait_until(ready, process, log, Path(argv[0]).name, timeout=START_TIMEOUT)
        yield


@contextlib.contextmanager
def postgres(args: list[str], limit_mb: int, tls: dict[str, str] | None = None) -> Iterator[int]:
    bin_dir = postgres_bin()
    with server_dir("devstack-bench-pg-") as base:
        data, log = base / "data", base / "server.log"
        checked(
            run_as_server([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], log), "initdb"
        )
        port = free_port()
        argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base)]
        argv += ["-c", f"listen_addresses={LOCALHOST}", *args]
        if tls:
            for name, text in tls.items():
                write_owned(base / name, text)
            argv += ["-c", "ssl=on", "-c", f"ssl_cert_file={base / CERT_FILE}", "-c", f"ssl_key_file={base / KEY_FILE}"]
        with _running(argv, log, lambda: accepts(port), limit_mb):
            yield port


@contextlib.contextmanager
def pgbouncer_for(ini: str, pg_port: int, limit_mb: int) -> Iterator[int]:
    with server_dir("devstack-bench-pgb-") as base:
        port = free_port()
        write_owned(base / "pgbouncer.ini", localise_pgbouncer(ini, port, pg_port, base))
        write_owned(base / "userlist.txt", '"postgres" ""\n')
        argv = [find("pgbouncer"), str(base / "pgbouncer.ini")]
        with _running(argv, base / "server.log", lambda: accepts(port), limit_mb):
            yield port


@contextlib.contextmanager
def mariadb(args: list[str], limit_mb: int) -> Iterator[Path]:
    with server_dir("devstack-bench-my-") as base:
        data, log, sock = base / "data", base / "server.log", base / "mysqld.sock"
        install = [find("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--skip-test-db"]
        checked(run_as_server([*install, "--auth-root-authentication-method=normal"], log), "mariadb-install-db")
        argv = [find("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={sock}", "--skip-networking"]
        argv += ["--skip-log-bin", f"--pid-file={base / 'mysqld.pid'}", *args]
        with _running(argv, log, lambda: _mariadb_ready(sock), limit_mb):
            subprocess.run(
                [find("mariadb"), "--no-defaults", "-uroot", f"--socket={sock}", "-e", "CREATE DATABASE sbtest"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            yield sock


def _mariadb_ready(sock: Path) -> bool:
    if not sock.exists():
        return False
    probe = [find("mariadb"), "--no-defaults", "-uroot", f"--socket={sock}", "-e", "SELECT 1"]
    return subprocess.run(probe, capture_output=True, check=False, timeout=10).returncode == 0


@contextlib.contextmanager
def redis_nodes(conf: str, count: int, limit_mb: int, tls: dict[str, str] | None = None) -> Iterator[list[int]]:
    """`count` nodes from the plan's conf; with TLS, each node's TLS port follows in the list."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            base = stack.enter_context(server_dir("devstack-bench-redis-"))
            port, tls_port = free_port(), free_port() if tls else None
            for name, text in (tls or {}).items():
                write_owned(base / name, text)
            write_owned(base / "redis.conf", localise_redis(conf, port, base, tls_port))
            argv = [find("redis-server"), str(base / "redis.conf")]
            stack.enter_context(_running(argv, base / "server.log", lambda p=port: accepts(p), limit_mb))
            ports += [port] if tls_port is None else [port, tls_port]
        if count > 1:
            addresses = [f"{LOCALHOST}:{p}" for p in ports]
            create = [find("redis-cli"), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
            subprocess.run(create, check=True, capture_output=True, timeout=60)
            for port in ports:
                _wait_cluster_ok(port)
        yield ports


def _wait_cluster_ok(port: int) -> None:
    for _ in range(300):
        info = subprocess.run(
            [find("redis-cli"), "-p", str(port), "cluster", "info"], capture_output=True, text=True, check=False
        ).stdout
        # with cluster-require-full-coverage no, "ok" comes before a node knows every slot's owner
        if "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info:
            return
        subprocess.run(["sleep", "0.1"], check=False)
    raise RuntimeError("the benchmark's cluster did not reach state ok")


# --- clients ----------------------------------------------------------------------------------


def _output(argv: list[str], env: dict[str, str] | None = None, timeout: int = 600) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout)[-1500:]}")
    return result.stdout


def pgbench_init(port: int, scale: int) -> None:
    _output(
        [find("pgbench"), "-i", "-q", "-s", str(scale), "-h", LOCALHOST, "-p", str(port), "-U", "postgres", "postgres"]
    )


def pgbench(port: int, seconds: int, tls: dict[str, str] | None = None) -> float:
    """TPC-B-like, 8 clients on persistent connections; plaintext unless `tls` (libpq's variables)."""
    argv = [find("pgbench"), "-n", "-M", "simple", "-c", "8", "-j", "2", "-T", str(seconds)]
    env = {"PATH": "/usr/bin:/bin", "PGSSLMODE": "disable", "PGPASSFILE": "/dev/null", **(tls or {})}
    out = _output([*argv, "-h", LOCALHOST, "-p", str(port), "-U", "postgres", "postgres"], env=env)
    found = re.search(r"^tps = ([\d.]+)", out, re.M)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {out[-500:]}")
    return float(found.group(1))


def _sysbench(sock: Path, rows: int, command: str, seconds: int = 0) -> str:
    argv = [find("sysbench"), "oltp_read_write", "--db-driver=mysql", f"--mysql-socket={sock}", "--mysql-user=root"]
    argv += ["--tables=2", f"--table-size={rows}", "--threads=4", f"--time={seconds}", command]
    return _output(argv)


def sysbench(sock: Path, rows: int, seconds: int) -> float:
    out = _sysbench(sock, rows, "run", seconds)
    found = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", out)
    if found is None:
        raise RuntimeError(f"sysbench printed no rate: {out[-500:]}")
    return float(found.group(1))


def redis_benchmark(port: int, requests: int, cluster: bool = False, ca: Path | None = None) -> float:
    """SET and GET, 20 persistent connections; their mean requests per second."""
    argv = [find("redis-benchmark"), "-h", LOCALHOST, "-p", str(port), "-t", "set,get", "-n", str(requests)]
    argv += ["-c", "20", "-r", "10000", "--csv"]
    if cluster:
        argv.append("--cluster")
    if ca is not None:
        argv += ["--tls", "--cacert", str(ca), "--sni", "localhost"]
    rates = [float(m.group(1)) for m in re.finditer(r'^"(?:SET|GET)","([\d.]+)"', _output(argv), re.M)]
    if len(rates) != 2:
        raise RuntimeError("redis-benchmark printed no SET/GET rates")
    return statistics.fmean(rates)


# --- the pairs ----------------------------------------------------------------------------------


def interleaved(rounds: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    """Median of each, measured in turns (A B, then B A, ...) so drift hits both alike."""
    got_a, got_b = [], []
    for turn in range(rounds):
        first, second = (a, b) if turn % 2 == 0 else (b, a)
        x, y = first(), second()
        got_a.append(x if first is a else y)
        got_b.append(y if first is a else x)
    return statistics.median(got_a), statistics.median(got_b)


PHASE2, PHASE3 = ("phase=2", "profiles=full,reference"), ("phase=3", "profiles=full,reference")


def bench_postgres(plans: Plans, sizes: Sizes) -> list[Result]:
    base, tuned = plans.container("postgres", *PHASE2), plans.container("postgres", *PHASE3)
    limit = tuned["memory"]
    ini2 = plans.upload("pgbouncer", pgbouncer.INI_PATH, *PHASE2)
    ini3 = plans.upload("pgbouncer", pgbouncer.INI_PATH, *PHASE3)
    bouncer_limit = plans.container("pgbouncer", *PHASE3)["memory"]
    tls = plans.tls_files("postgres")
    results = []
    with (
        postgres(postgres_tuned_args(base["command"]), limit, tls) as p2,
        postgres(postgres_tuned_args(tuned["command"]), limit, tls) as p3,
        pgbouncer_for(ini2, p2, bouncer_limit) as b2,
        pgbouncer_for(ini3, p3, bouncer_limit) as b3,
    ):
        pgbench_init(p2, sizes.pgbench_scale)
        pgbench_init(p3, sizes.pgbench_scale)
        a, b = interleaved(sizes.rounds, lambda: pgbench(p2, sizes.seconds), lambda: pgbench(p3, sizes.seconds))
        results.append(Result("pgbench direct", "tps", "phase 2", a, "phase 3 tuned", b, 1.0))
        a, b = interleaved(sizes.rounds, lambda: pgbench(b2, sizes.seconds), lambda: pgbench(b3, sizes.seconds))
        results.append(Result("pgbench via PgBouncer", "tps", "phase 2", a, "phase 3 tuned", b, 1.0))
        with server_dir("devstack-bench-ca-") as cadir:
            write_owned(cadir / CA_FILE, tls[CA_FILE], 0o644)
            secure = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(cadir / CA_FILE)}
            a, b = interleaved(
                sizes.rounds,
                lambda: pgbench(p3, sizes.seconds),
                lambda: pgbench(p3, sizes.seconds, secure),
            )
        results.append(Result("pgbench direct, TLS", "tps", "plaintext", a, "TLS (verify-full)", b, 0.9))
    return results


def bench_mariadb(plans: Plans, sizes: Sizes) -> list[Result]:
    base, tuned = plans.container("mysql", *PHASE2), plans.container("mysql", *PHASE3)
    limit = tuned["memory"]
    with (
        mariadb(mysql_tuned_args(base["command"]), limit) as s2,
        mariadb(mysql_tuned_args(tuned["command"]), limit) as s3,
    ):
        for sock in (s2, s3):
            _sysbench(sock, sizes.sysbench_rows, "prepare")
        a, b = interleaved(
            sizes.rounds,
            lambda: sysbench(s2, sizes.sysbench_rows, sizes.seconds),
            lambda: sysbench(s3, sizes.sysbench_rows, sizes.seconds),
        )
    return [Result("sysbench OLTP read/write (MariaDB)", "tps", "phase 2", a, "phase 3 tuned", b, 1.0)]


def bench_redis(plans: Plans, sizes: Sizes) -> list[Result]:
    n = sizes.redis_requests
    results = []
    minimal2, minimal3 = ("phase=2", "profiles=minimal"), ("phase=3", "profiles=minimal")
    alone2 = plans.upload("redis-1", redis.CONF_PATH, *minimal2)
    alone3 = plans.upload("redis-1", redis.CONF_PATH, *minimal3)
    alone_limit = plans.container("redis-1", *minimal3)["memory"]
    with redis_nodes(alone2, 1, alone_limit) as (r2,), redis_nodes(alone3, 1, alone_limit) as (r3,):
        a, b = interleaved(sizes.rounds, lambda: redis_benchmark(r2, n), lambda: redis_benchmark(r3, n))
    results.append(Result("redis-benchmark standalone", "ops/s", "phase 2", a, "phase 3 tuned", b, 1.0))
    std2, std3 = ("phase=2", "profiles=standard"), ("phase=3", "profiles=standard")
    conf2 = plans.upload("redis-1", redis.CONF_PATH, *std2)
    conf3 = plans.upload("redis-1", redis.CONF_PATH, *std3)
    limit = plans.container("redis-1", *std3)["memory"]
    with redis_nodes(conf2, 3, limit) as c2, redis_nodes(conf3, 3, limit) as c3:
        a, b = interleaved(
            sizes.rounds,
            lambda: redis_benchmark(c2[0], n, cluster=True),
            lambda: redis_benchmark(c3[0], n, cluster=True),
        )
    results.append(Result("redis-benchmark cluster (3 nodes)", "ops/s", "phase 2", a, "phase 3 tuned", b, 1.0))
    tls = plans.tls_files("redis-1")
    with redis_nodes(alone3, 1, alone_limit, tls) as (plain, secure), server_dir("devstack-bench-ca-") as cadir:
        write_owned(cadir / CA_FILE, tls[CA_FILE], 0o644)
        a, b = interleaved(
            sizes.rounds, lambda: redis_benchmark(plain, n), lambda: redis_benchmark(secure, n, ca=cadir / CA_FILE)
        )
    results.append(Result("redis-benchmark standalone, TLS", "ops/s", "plaintext", a, "TLS", b, 0.9))
    return results


# By the client each group runs (--only takes these names).
BENCHES: dict[str, Callable[[Plans, Sizes], list[Result]]] = {
    "pgbench": bench_postgres,
    "sysbench": bench_mariadb,
    "redis-benchmark": bench_redis,
}


def run_all(sizes: Sizes, only: list[str] | None = None) -> tuple[list[Result], list[str]]:
    """Every benchmark; one whose tool is missing is skipped with a line saying what to install."""
    plans = Plans()
    results: list[Result] = []
    skipped: list[str] = []
    for name, bench in BENCHES.items():
        if only and name not in only:
            continue
        try:
            results += bench(plans, sizes)
        except ServerUnavailableError as missing:
            skipped.append(f"{name}: {missing}")
    return results, skipped


__all__ = ["FULL", "SMOKE", "Result", "Sizes", "localise_pgbouncer", "localise_redis", "mysql", "run_all"]
