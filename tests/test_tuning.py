"""The tuning feature (phase 3): each server's settings derived from its own container limit,
read from the plan; their real servers read them back in tests/test_tuning_real.py."""

from __future__ import annotations

import itertools
import re

import pytest

from devstack.services import mongodb, mysql, postgres, rabbitmq, redis
from devstack.services.pgbouncer import INI_PATH
from tests.conftest import PlanFactory, containers

FULL = "profiles=full,reference"
MIB = 1024 * 1024


def upload(inputs: dict, path: str) -> str:
    (content,) = [u["content"] for u in inputs.get("uploads") or [] if u["file"] == path]
    return content


def pg_settings(command: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for flag, arg in itertools.pairwise(command) if flag == "-c")


def pg_mb(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(kB|MB|GB)", value).groups()  # type: ignore[union-attr]
    return int(number) / {"kB": 1024, "MB": 1, "GB": 1 / 1024}[unit]


def test_phase2_keeps_the_images_defaults(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan(FULL, "phase=2"))
    assert "shared_buffers" not in " ".join(planned["dev-postgres"]["command"])
    assert not any(a.startswith("--innodb") for a in planned["dev-mysql"]["command"])
    assert "--wiredTigerCacheSizeGB" not in planned["dev-mongodb"]["command"]
    assert "maxmemory 256mb" in upload(planned["dev-redis-1"], redis.CONF_PATH)
    assert rabbitmq.RABBITMQ_MEMORY_CONF not in {u["file"] for u in planned["dev-rabbitmq"]["uploads"]}
    assert "max_db_connections" not in upload(planned["dev-pgbouncer"], INI_PATH)


@pytest.mark.parametrize("budget", ["8GiB", "4GiB", "24g"])
def test_postgres_follows_its_limit(shared_plan: PlanFactory, budget: str) -> None:
    inputs = containers(shared_plan(FULL, "phase=3", f"memoryBudget={budget}"))["dev-postgres"]
    limit, settings = inputs["memory"], pg_settings(inputs["command"])
    expected = postgres.postgres_settings(limit)
    assert {k: settings[k] for k in expected} == expected
    shared = pg_mb(settings["shared_buffers"])
    assert shared == limit // 4
    assert pg_mb(settings["effective_cache_size"]) < limit
    # every connection sorting at once, plus maintenance, still fits beside shared_buffers
    connections = int(settings["max_connections"])
    worst = shared + connections * pg_mb(settings["work_mem"]) + pg_mb(settings["maintenance_work_mem"])
    assert worst <= limit * 1.1 or pg_mb(settings["work_mem"]) == 1  # 1MB is PostgreSQL's least useful


def test_postgres_connections_match_pgbouncers_pools(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan(FULL, "phase=3"))
    ini = upload(planned["dev-pgbouncer"], INI_PATH)
    per_database = int(re.search(r"^max_db_connections = (\d+)$", ini, re.M).group(1))  # type: ignore[union-attr]
    pool = int(re.search(r"^default_pool_size = (\d+)$", ini, re.M).group(1))  # type: ignore[union-attr]
    assert pool <= per_database
    settings = pg_settings(planned["dev-postgres"]["command"])
    reserved = int(settings["superuser_reserved_connections"])
    pooled = per_database * postgres.POOLED_DATABASES
    assert int(settings["max_connections"]) == pooled + postgres.DIRECT_CONNECTIONS + reserved


def test_postgres_wal_is_set_for_a_laptop_disk(shared_plan: PlanFactory) -> None:
    settings = pg_settings(containers(shared_plan(FULL, "phase=3"))["dev-postgres"]["command"])
    assert settings["random_page_cost"] == "1.1"
    assert settings["wal_compression"] == "lz4"
    assert settings["checkpoint_completion_target"] == "0.9"
    assert "fsync" not in settings  # durability is not traded for speed
    assert "synchronous_commit" not in settings


def test_tuning_comes_before_the_tls_switches(shared_plan: PlanFactory) -> None:
    command = containers(shared_plan(FULL, "phase=4"))["dev-postgres"]["command"]
    assert command.index("shared_buffers=" + pg_settings(command)["shared_buffers"]) < command.index("ssl=on")


@pytest.mark.parametrize("limit", [512, 700, 1156, 4096])
def test_mysql_pool_fits_beside_its_overhead(limit: int) -> None:
    settings = mysql.mysql_settings(limit)
    pool = int(settings["innodb-buffer-pool-size"].removesuffix("M"))
    assert pool % mysql.BUFFER_POOL_CHUNK_MB == 0
    assert pool + mysql.MYSQL_OVERHEAD_MB <= limit or pool == mysql.BUFFER_POOL_CHUNK_MB
    assert 48 <= int(settings["innodb-log-file-size"].removesuffix("M")) <= 512


def test_mysql_and_mongodb_args_come_from_their_limits(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan(FULL, "phase=3"))
    mysql_inputs, mongo_inputs = planned["dev-mysql"], planned["dev-mongodb"]
    for key, value in mysql.mysql_settings(mysql_inputs["memory"]).items():
        assert f"--{key}={value}" in mysql_inputs["command"]
    command = mongo_inputs["command"]
    cache = float(command[command.index("--wiredTigerCacheSizeGB") + 1])
    assert cache == float(mongodb.wired_tiger_cache_gb(mongo_inputs["memory"]))
    assert 0.25 <= cache * 1024 < mongo_inputs["memory"]


def test_redis_memory_and_eviction_by_role(shared_plan: PlanFactory) -> None:
    for profiles, policy in (("profiles=full", "volatile-lru"), ("profiles=minimal", "allkeys-lru")):
        inputs = containers(shared_plan(profiles, "phase=3"))["dev-redis-1"]
        conf = upload(inputs, redis.CONF_PATH).splitlines()
        maxmemory = int(next(line for line in conf if line.startswith("maxmemory ")).split()[1].removesuffix("mb"))
        assert maxmemory == inputs["memory"] // 2
        assert f"maxmemory-policy {policy}" in conf
        assert "appendonly yes" in conf
        assert "appendfsync everysec" in conf
        assert conf.count("maxmemory-policy " + policy) == 1


def test_rabbitmq_watermark_is_relative_to_its_limit(shared_plan: PlanFactory) -> None:
    inputs = containers(shared_plan(FULL, "phase=3"))["dev-rabbitmq"]
    conf = upload(inputs, rabbitmq.RABBITMQ_MEMORY_CONF)
    watermark = int(re.search(r"^vm_memory_high_watermark.absolute = (\d+)$", conf, re.M).group(1))  # type: ignore[union-attr]
    assert watermark == int(inputs["memory"] * rabbitmq.HIGH_WATERMARK) * MIB
    assert watermark < inputs["memory"] * MIB


def test_untuned_servers_are_left_alone(shared_plan: PlanFactory) -> None:
    """The servers without a tuning hook get the same command and files at phases 2 and 3."""
    two, three = containers(shared_plan(FULL, "phase=2")), containers(shared_plan(FULL, "phase=3"))
    for name in ("dev-forgejo", "dev-prometheus", "dev-grafana", "dev-loki", "dev-vault", "dev-vector"):
        assert two[name].get("command") == three[name].get("command"), name
        assert [u["file"] for u in two[name].get("uploads") or []] == [
            u["file"] for u in three[name].get("uploads") or []
        ]
