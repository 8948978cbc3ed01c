"""Redis cluster failover, for real: Debian's redis-server nodes on 127.0.0.1, each started from
the phase-3 plan's own redis.conf (localised: tests/tunedservers.py), formed by the program's
own cluster script. A killed node takes only its own slots away while the others keep serving
(`cluster-require-full-coverage no`, the plan's setting) or stops the whole cluster (`yes`, the
alternative the README documents); restarted, it finds its data in its append-only file and the
cluster is ok again. With a replica per master, a killed master's replica takes over and
writes to its slots continue."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.services import redis
from tests.conftest import containers, make_plan
from tests.realservers import RedisError
from tests.tunedservers import ADMIN_PASSWORD, Node, plan_redis_conf, running_nodes

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "redis-cluster-create.sh"
KEYS = [f"failover:{i}" for i in range(60)]


def _tools() -> None:
    for tool in ("redis-server", "redis-cli", "busybox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is installed by .ci/run (.ci/apt-packages)")


def _planned_conf(*overrides: str) -> str:
    inputs = containers(make_plan("profiles=standard", "phase=3", *overrides))["dev-redis-1"]
    conf = next(u["content"] for u in inputs["uploads"] if u["file"] == redis.CONF_PATH)
    assert "cluster-require-full-coverage no" in conf.splitlines()
    assert "appendonly yes" in conf.splitlines()
    return conf


def _form(nodes: list[Node], replicas: int = 0) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "REDISCLI_AUTH": ADMIN_PASSWORD,
        "DEVSTACK_WAIT_SECONDS": "30",
        "DEVSTACK_REDIS_REPLICAS": str(replicas),
    }
    result = subprocess.run(
        ["busybox", "sh", "-s", "--", *(f"127.0.0.1:{n.port}" for n in nodes)],
        input=SCRIPT.read_text(),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _wait(lambda: all(_info(n).get("cluster_state") == "ok" for n in nodes), "every node sees the cluster ok")


def _info(node: Node) -> dict[str, str]:
    reply = node.call("CLUSTER", "INFO")
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def _owner(nodes: list[Node], key: str) -> Node:
    """The node serving the key's slot now (from a live node's view of the cluster)."""
    for node in nodes:
        if node.process is None or node.process.poll() is not None:
            continue
        slot = node.call("CLUSTER", "KEYSLOT", key)
        for start, end, master, *_ in node.call("CLUSTER", "SLOTS"):  # type: ignore[misc, union-attr]
            if start <= slot <= end:  # type: ignore[operator]
                port = master[1]
                return next(n for n in nodes if n.port == port)
    raise AssertionError("no live node")


def _write_all(nodes: list[Node], value: str) -> None:
    for key in KEYS:
        assert _owner(nodes, key).call("SET", key, value) == "OK"


def test_a_killed_node_takes_only_its_slots_then_comes_back_with_its_data() -> None:
    _tools()
    conf = plan_redis_conf(_planned_conf())
    with running_nodes([conf] * 3) as nodes:
        _form(nodes)
        _write_all(nodes, "before")
        time.sleep(1.5)  # appendfsync everysec: the last second may be lost in a crash, no more
        victim = nodes[1]
        lost = {k for k in KEYS if _owner(nodes, k) is victim}
        assert lost
        assert lost != set(KEYS)
        victim.kill()
        survivors = [n for n in nodes if n is not victim]
        # The survivors agree it failed (its slots count as failed); with
        # cluster-require-full-coverage no the cluster stays ok for every other slot.
        _wait(lambda: _info(survivors[0]).get("cluster_slots_fail") != "0", "the survivors see the node fail")
        assert _info(survivors[0])["cluster_state"] == "ok"
        for key in set(KEYS) - lost:
            owner = _owner(survivors, key)
            assert owner.call("GET", key) == b"before"
            assert owner.call("SET", key, "during") == "OK"
        down = survivors[0].call("GET", next(iter(lost)))
        assert isinstance(down, RedisError)  # a slot nobody serves: CLUSTERDOWN or MOVED to the dead node

        victim.start()
        _wait(lambda: all(_info(n).get("cluster_state") == "ok" for n in nodes), "the cluster is ok again")
        for key in lost:
            assert victim.call("GET", key) == b"before", key  # from its append-only file
        for key in set(KEYS) - lost:
            assert _owner(nodes, key).call("GET", key) == b"during"


def test_with_full_coverage_required_the_whole_cluster_stops() -> None:
    _tools()
    conf = plan_redis_conf(_planned_conf())
    with running_nodes([conf] * 3) as nodes:
        _form(nodes)
        _write_all(nodes, "before")
        for node in nodes:
            assert node.call("CONFIG", "SET", "cluster-require-full-coverage", "yes") == "OK"
        victim = nodes[2]
        kept = next(k for k in KEYS if _owner(nodes, k) is nodes[0])
        victim.kill()
        _wait(lambda: _info(nodes[0]).get("cluster_state") == "fail", "the survivors see the node fail")
        reply = nodes[0].call("GET", kept)  # a slot of a live node: refused too
        assert isinstance(reply, RedisError)
        assert str(reply).startswith("CLUSTERDOWN")
        victim.start()
        _wait(lambda: _info(nodes[0]).get("cluster_state") == "ok", "the cluster is ok again")
        assert nodes[0].call("GET", kept) == b"before"


def test_with_a_replica_per_master_a_killed_master_is_replaced_and_writes_continue() -> None:
    _tools()
    # With redisReplicas the plan's file includes the wrapper's masterauth file (a replica logs
    # in to its master); tunedservers writes that file as the wrapper would.
    planned = _planned_conf("redisReplicas=true")
    assert "include /run/devstack/masterauth.conf" in planned.splitlines()
    conf = plan_redis_conf(planned)
    with running_nodes([conf] * 6) as nodes:
        _form(nodes, replicas=1)
        roles = [n.call("ROLE")[0] for n in nodes]  # type: ignore[index]
        assert sorted(roles) == [b"master"] * 3 + [b"slave"] * 3
        replicas = [n for n in nodes if n.call("ROLE")[0] == b"slave"]  # type: ignore[index]
        _wait(lambda: all(r.call("ROLE")[3] == b"connected" for r in replicas), "every replica in sync")  # type: ignore[index]
        _write_all(nodes, "before")
        master = next(n for n in nodes if n.call("ROLE")[0] == b"master")  # type: ignore[index]
        assert master.call("WAIT", "1", "5000") == 1  # its replica has every write
        moved = [k for k in KEYS if _owner(nodes, k) is master]
        assert moved
        master.kill()
        live = [n for n in nodes if n is not master]
        _wait(
            lambda: _info(live[0]).get("cluster_state") == "ok" and _owner(nodes, moved[0]) is not master,
            "a replica is promoted and the cluster is ok",
        )
        promoted = _owner(nodes, moved[0])
        assert promoted.call("ROLE")[0] == b"master"  # type: ignore[index]
        for key in moved:
            assert promoted.call("GET", key) == b"before"  # replicated before the master died
            assert promoted.call("SET", key, "after") == "OK"
