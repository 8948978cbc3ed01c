"""A network namespace of the test's own, joined to this host by a veth pair it creates: a client
that is not on loopback, for what a server does only to remote clients (Redis's protected mode).

Names and the /30 carry this process's id; traffic stays on the pair. Everything is removed when
the context exits. Needs root and iproute2 (`ip`); `unavailable()` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    namespace: str
    host_address: str  # this host's end of the pair: a server listens here for the peer
    peer_address: str

    def run(self, args: Sequence[str], timeout: int = 20) -> subprocess.CompletedProcess[str]:
        """A command inside the namespace."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "ip missing: apt-get install iproute2"
    if os.geteuid() != 0:
        return "a network namespace needs root"
    return None


class NetnsUnavailableError(RuntimeError):
    """This machine does not let us make a namespace (no CAP_NET_ADMIN, no veth): a skip."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if result.returncode != 0:
        raise NetnsUnavailableError(f"ip {' '.join(args[:2])}: {result.stderr.strip()}")


@contextlib.contextmanager
def remote_peer() -> Iterator[Peer]:
    tag = f"{os.getpid() % 100000}"
    namespace, host_end, peer_end = f"dsns{tag}", f"dsh{tag}", f"dsp{tag}"
    octet = os.getpid() % 250 + 1
    peer = Peer(namespace, f"10.213.{octet}.1", f"10.213.{octet}.2")
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end)
        _ip("link", "set", peer_end, "netns", namespace)
        _ip("addr", "add", f"{peer.host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{peer.peer_address}/30", "dev", peer_end)
        _ip("-n", namespace, "link", "set", peer_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield peer
    finally:
        for args in (("link", "del", host_end), ("netns", "del", namespace)):
            subprocess.run(["ip", *args], capture_output=True, timeout=20, check=False)
