"""Real redis-server nodes started from the plan's own redis.conf, for the tuning read-back, the
failover tests and the benchmark. Only the lines that name the container's world change: the
listen address and port, the data directory, the ACL file, the announced address; the TLS lines
are dropped (the TLS tests cover them with the plan's certificates). Any other line is kept as
the plan renders it, and a line naming a path or port this does not know stops the test."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.realservers import (
    LOCALHOST,
    RedisError,
    RespConnection,
    _find,
    _server_dir,
    _server_identity,
    _tail,
    _write_owned,
    free_port,
)

ADMIN_PASSWORD = "tuned-admin-password-for-tests"
NodeConf = Callable[[int, Path], str]  # (port, home) -> redis.conf text


def _rewrite(line: str, port: int, home: Path) -> str | None:
    key = line.split(" ", 1)[0]
    replaced = {
        "bind": f"bind {LOCALHOST}",
        "port": f"port {port}",
        "dir": f"dir {home}",
        "aclfile": f"aclfile {home / 'users.acl'}",
        "cluster-announce-ip": f"cluster-announce-ip {LOCALHOST}",
        "include": f"include {home / 'masterauth.conf'}",  # as the wrapper renders it
    }
    if key.startswith("tls-"):
        return None
    if key in replaced:
        return replaced[key]
    if "/" in line or "6379" in line or "16379" in line:
        raise AssertionError(f"a line of the plan's redis.conf this does not know how to localise: {line!r}")
    return line


def plan_redis_conf(planned: str) -> NodeConf:
    """The plan's redis.conf, localised for a node at `port` with its files in `home`."""

    def render(port: int, home: Path) -> str:
        lines = [_rewrite(line, port, home) for line in planned.splitlines()]
        return "\n".join(line for line in lines if line is not None) + '\nlogfile ""\n'

    return render


class Node:
    """One redis-server; `stop()` kills it hard (as a crash would), `start()` brings it back
    with the same directory, so what it persisted is all it has."""

    def __init__(self, home: Path, port: int, conf: NodeConf) -> None:
        self.home, self.port, self.conf = home, port, conf
        self.log = home / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _write_owned(self.home / "redis.conf", self.conf(self.port, self.home))
        identity = _server_identity()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [_find("redis-server"), str(self.home / "redis.conf")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=identity.uid if identity else None,
                group=identity.gid if identity else None,
                extra_groups=[] if identity else None,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{_tail(self.log)}")
            with contextlib.suppress(OSError, ConnectionError), self.connect() as conn:
                reply = conn.call("PING")
                if reply == "PONG" or (isinstance(reply, RedisError) and "LOADING" not in str(reply)):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{_tail(self.log)}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def connect(self) -> RespConnection:
        conn = RespConnection(self.port)
        reply = conn.call("AUTH", ADMIN_PASSWORD)
        if isinstance(reply, RedisError):
            conn.close()
            raise ConnectionError(str(reply))
        return conn

    def call(self, *args: str) -> object:
        with self.connect() as conn:
            return conn.call(*args)


def node_port() -> int:
    # The cluster bus is port + 10000: keep ports below 55535.
    while (port := free_port()) >= 55000:
        pass
    return port


@contextlib.contextmanager
def running_nodes(confs: list[NodeConf]) -> Iterator[list[Node]]:
    """One node per conf, each in its own directory with the admin's ACL line; all stopped at
    the end, whatever happened."""
    _find("redis-server")
    verifier = hashlib.sha256(ADMIN_PASSWORD.encode()).hexdigest()
    with contextlib.ExitStack() as stack:
        nodes = []
        for conf in confs:
            home = stack.enter_context(_server_dir("devstack-redis-"))
            _write_owned(home / "users.acl", f"user default on #{verifier} ~* &* +@all\n")
            _write_owned(home / "masterauth.conf", f"masterauth {ADMIN_PASSWORD}\n")
            node = Node(home, node_port(), conf)
            stack.callback(node.stop)
            nodes.append(node)
        for node in nodes:
            node.start()
        yield nodes


@contextlib.contextmanager
def running_redis_conf(conf: NodeConf) -> Iterator[Node]:
    with running_nodes([conf]) as (node,):
        yield node
