"""The tuning feature read back from real servers (Debian's): each starts with exactly the
settings the phase-3 plan renders for its container (its command's options, its config file's
lines) and reports the values it runs with. Only what names this machine changes: ports,
directories, the listen address, files the wrapper would write. TLS switches are tested in
the TLS tests; here they are left out because their files live elsewhere.

Debian has no MongoDB: its WiredTiger cache is checked on the plan only (tests/test_tuning.py)."""

from __future__ import annotations

import itertools
import re
import subprocess
import urllib.request

import pytest

from devstack.services import rabbitmq, redis
from devstack.services.pgbouncer import INI_PATH
from tests.conftest import containers, make_plan
from tests.realservers import RedisError, ServerUnavailableError
from tests.shipped import scratch, shipped, start_mariadb, start_postgres
from tests.tunedservers import plan_redis_conf, running_redis_conf

pytestmark = pytest.mark.real

PHASE3 = ("profiles=full,reference", "phase=3")
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def planned() -> dict[str, dict]:
    return containers(make_plan(*PHASE3))


def _pg_tuned(command: list[str]) -> list[tuple[str, str]]:
    pairs = [arg.split("=", 1) for flag, arg in itertools.pairwise(command) if flag == "-c"]
    return [(k, v) for k, v in pairs if not k.startswith("ssl") and k != "hba_file"]


def test_postgres_runs_with_the_planned_settings(planned: dict[str, dict]) -> None:
    """The container's own arguments (TLS included, materialised by tests/shipped.py)."""
    tuned = _pg_tuned(planned["dev-postgres"]["command"])
    assert len(tuned) >= 10
    try:
        with scratch(shipped("postgres", *PHASE3)) as s, start_postgres(s, accounts=False) as server:
            shown = {key: server.admin_query(f"SHOW {key};") for key, _ in tuned}
            usable = int(
                server.admin_query(
                    "SELECT current_setting('max_connections')::int"
                    " - current_setting('superuser_reserved_connections')::int;"
                )
            )
    except ServerUnavailableError as error:
        pytest.skip(f"{error}: install postgresql (.ci/apt-packages)")
    assert shown == dict(tuned)
    # PgBouncer's pools (max_db_connections per database, two databases) and the direct clients fit
    ini = next(u["content"] for u in planned["dev-pgbouncer"]["uploads"] if u["file"] == INI_PATH)
    per_database = int(re.search(r"^max_db_connections = (\d+)$", ini, re.M).group(1))  # type: ignore[union-attr]
    assert usable >= per_database * 2 + 30


def test_mariadb_runs_with_the_planned_innodb_sizes(planned: dict[str, dict]) -> None:
    command = planned["dev-mysql"]["command"]
    tuned = [a for a in command if a.startswith(("--innodb-", "--max-connections"))]
    assert len(tuned) == 3
    expected = {a[2:].split("=", 1)[0].replace("-", "_"): a.split("=", 1)[1] for a in tuned}
    try:
        with scratch(shipped("mysql", *PHASE3)) as s, start_mariadb(s, accounts=False) as server:
            names = ", ".join(f"@@{name}" for name in expected)
            result = server.apply(f"SELECT {names};")
            assert result.returncode == 0, result.stderr
            values = result.stdout.splitlines()[-1].split("\t")
    except ServerUnavailableError as error:
        pytest.skip(f"{error}: install mariadb-server (.ci/apt-packages)")
    for (name, text), value in zip(expected.items(), values, strict=True):
        want = int(text.removesuffix("M")) * MIB if text.endswith("M") else int(text)
        assert int(value) == want, name


@pytest.mark.parametrize(
    ("profiles", "policy"), [("profiles=full", "volatile-lru"), ("profiles=minimal", "allkeys-lru")]
)
def test_redis_runs_with_the_planned_memory_lines(profiles: str, policy: str) -> None:
    inputs = containers(make_plan(profiles, "phase=3"))["dev-redis-1"]
    conf = next(u["content"] for u in inputs["uploads"] if u["file"] == redis.CONF_PATH)
    try:
        with running_redis_conf(plan_redis_conf(conf)) as node, node.connect() as conn:
            got = {}
            for key in ("maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "save", "aof-use-rdb-preamble"):
                reply = conn.call("CONFIG", "GET", key)
                assert isinstance(reply, list), reply
                got[key] = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
            assert not isinstance(conn.call("PING"), RedisError)
    except ServerUnavailableError as error:
        pytest.skip(f"{error}: install redis-server (.ci/apt-packages)")
    assert int(got["maxmemory"]) == inputs["memory"] // 2 * MIB
    assert got["maxmemory-policy"] == policy
    assert (got["appendonly"], got["appendfsync"], got["aof-use-rdb-preamble"]) == ("yes", "everysec", "yes")
    assert got["save"] == ""


def test_rabbitmq_runs_with_the_planned_watermark() -> None:
    """The node with every file the phase-3 container gets (tests/shipped.py), its memory file too."""
    from tests.test_tls_rabbitmq_real import _running_node

    overrides = ("phase=3", "profiles=standard")
    inputs = containers(make_plan(*overrides))["dev-rabbitmq"]
    assert any(u["file"] == rabbitmq.RABBITMQ_MEMORY_CONF for u in inputs["uploads"])
    with _running_node(shipped("rabbitmq", *overrides)) as node:
        url = f"http://127.0.0.1:{node.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
    found = re.search(r"^rabbitmq_resident_memory_limit_bytes (\S+)$", body, re.M)
    assert found is not None, "no memory limit metric"
    assert int(float(found.group(1))) == int(inputs["memory"] * rabbitmq.HIGH_WATERMARK) * MIB


def test_pgbouncer_runs_with_the_planned_pools(planned: dict[str, dict]) -> None:
    """PgBouncer's phase-3 ini (localised as the benchmark does) before a real PostgreSQL; its
    admin console reports the pool limits PostgreSQL's max_connections was counted from."""
    from tools.bench.suite import pgbouncer_for
    from tools.bench.suite import postgres as bench_postgres
    from tools.servers import find

    ini = next(u["content"] for u in planned["dev-pgbouncer"]["uploads"] if u["file"] == INI_PATH)
    wanted = {}
    for key in ("pool_mode", "default_pool_size", "max_db_connections", "reserve_pool_size", "server_idle_timeout"):
        found = re.search(rf"^{key} = (\S+)$", ini, re.M)
        assert found is not None, key
        wanted[key] = found.group(1)
    console = ini.replace("[pgbouncer]\n", "[pgbouncer]\nadmin_users = postgres\n")  # the test's only addition
    try:
        with bench_postgres([], 256) as pg_port, pgbouncer_for(console, pg_port, 64) as port:
            console_args = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "pgbouncer"]
            shown = subprocess.run(
                [find("psql"), "-X", "-qAt", "-F", "=", *console_args, "-c", "SHOW CONFIG"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
                env={"PATH": "/usr/bin:/bin", "PGSSLMODE": "disable"},
            ).stdout
    except ServerUnavailableError as error:
        pytest.skip(str(error))
    config = {line.split("=")[0]: line.split("=")[1] for line in shown.splitlines() if "=" in line}
    assert {key: config[key] for key in wanted} == wanted
