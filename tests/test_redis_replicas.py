"""redisReplicas on the plan: three more nodes, unpublished, in the cluster as replicas, with
the masterauth file their config includes; off by default. Real failover with them:
tests/test_redis_failover_real.py."""

from __future__ import annotations

from devstack.services.redis import CONF_PATH, MASTERAUTH_CONF
from tests.conftest import PlanFactory, containers

COMMAND = "command:local:Command"


def test_off_by_default_three_nodes(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=standard", "phase=3")
    names = {n for n in containers(run) if n.startswith("dev-redis-")}
    assert names == {"dev-redis-1", "dev-redis-2", "dev-redis-3"}
    assert "DEVSTACK_REDIS_REPLICAS" not in run.one(COMMAND, "redis-cluster-create").inputs["create"]


def test_on_a_replica_per_master(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=standard", "phase=3", "redisReplicas=true")
    planned = containers(run)
    nodes = [f"dev-redis-{n}" for n in range(1, 7)]
    assert all(n in planned for n in nodes)
    for name in nodes[3:]:
        assert not planned[name].get("ports"), "replicas are reached through the cluster only"
    for name in nodes:
        conf = next(u["content"] for u in planned[name]["uploads"] if u["file"] == CONF_PATH)
        assert f"include {MASTERAUTH_CONF}" in conf.splitlines()
        assert "masterauth " not in conf  # the password is in the wrapper's file, not here
    create = run.one(COMMAND, "redis-cluster-create").inputs["create"]
    assert "-e DEVSTACK_REDIS_REPLICAS=1 " in create
    addresses = create.rsplit(" -- ", 1)[1].split()
    assert [a.split(":")[0].rsplit(".", 1)[1] for a in addresses] == ["13", "16", "17", "18", "19", "21"]


def test_on_but_minimal_no_replica(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan("profiles=minimal", "redisReplicas=true"))
    assert {n for n in planned if n.startswith("dev-redis-")} == {"dev-redis-1"}
