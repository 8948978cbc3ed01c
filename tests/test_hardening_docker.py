"""The hardening the phase-4 plan ships, on the real Docker engine, with the busybox stand-in image.

Every distinct hardening of the plan's containers (user, capabilities, read-only root, tmpfs,
security options, PID limit and the `docker update` line that sets it) is given to a stand-in
container exactly as the plan has it: the engine accepts it, the process inside has exactly the
capabilities granted and no-new-privileges, a raw socket (ping) fails, a write outside the tmpfs
of a read-only root fails, and forking beyond the limit fails. Also what the engine does, shown
rather than assumed: an upload through the root (the Docker provider's way) is refused on a
read-only root, and what an `internal` network does to published ports and to egress.

Containers and networks are named hardening-<pid>-...; traffic stays on loopback, on networks
this test makes, and on a network namespace it makes.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from devstack.hardening import PIDS_LABEL
from tests import netns
from tests.conftest import PlanFactory
from tests.dockerlab import docker

pytestmark = pytest.mark.real

PREFIX = f"hardening-{os.getpid()}"
ALL = ("profiles=full,reference", "phase=4", "databaseExporters=true")  # every container there is
# Linux capability numbers (include/uapi/linux/capability.h) of the ones the catalog may grant.
CAP_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "SETGID": 6, "SETUID": 7, "NET_RAW": 13, "SYS_CHROOT": 18}


def _hardening(inputs: Mapping[str, Any]) -> tuple[Any, ...]:
    caps = inputs.get("capabilities") or {}
    labels = {entry["label"]: entry["value"] for entry in inputs["labels"]}
    return (
        inputs.get("user"),
        tuple(caps.get("adds") or ()),
        tuple(caps.get("drops") or ()),
        bool(inputs.get("readOnly")),
        tuple(sorted((inputs.get("tmpfs") or {}).items())),
        tuple(inputs.get("securityOpts") or ()),
        int(labels[PIDS_LABEL]),
        tuple(sorted((inputs.get("sysctls") or {}).items())),
    )


def _planned(shared_plan: PlanFactory) -> tuple[dict[tuple[Any, ...], list[str]], dict[str, str]]:
    """Each distinct hardening -> the services that have it; container name -> its pids command."""
    run = shared_plan(*ALL)
    kinds: dict[tuple[Any, ...], list[str]] = {}
    for record in run.by_type("docker:index/container:Container"):
        kinds.setdefault(_hardening(record.inputs), []).append(record.name)
    commands = {
        shlex.split(r.inputs["create"])[-1]: r.inputs["create"]
        for r in run.resources
        if r.type == "command:local:Command" and r.name.endswith("-pids-limit")
    }
    return kinds, commands


def _run_options(kind: tuple[Any, ...]) -> list[str]:
    user, adds, drops, read_only, tmpfs, options, _pids, sysctls = kind
    args = [f"--user={user}"] if user else []
    args += [f"--cap-drop={c}" for c in drops] + [f"--cap-add={c}" for c in adds]
    args += ["--read-only"] if read_only else []
    args += [f"--tmpfs={path}:{opts}" for path, opts in tmpfs]
    args += [f"--security-opt={o}" for o in options]
    args += [f"--sysctl={key}={value}" for key, value in sysctls]
    return args


@contextlib.contextmanager
def _container(image: str, name: str, options: list[str]) -> Iterator[str]:
    docker("rm", "-f", name, check=False)
    try:
        docker("run", "-d", "--name", name, "--network=none", *options, image, "sleep", "600")
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def _exec(name: str, script: str) -> tuple[int, str]:
    """The script's exit status and its output (stdout and stderr)."""
    result = subprocess.run(
        ["docker", "exec", name, "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    return result.returncode, result.stdout + result.stderr


def _status(name: str) -> dict[str, str]:
    text = docker("exec", name, "cat", "/proc/1/status")
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_engine_runs_every_planned_hardening_as_shipped(busybox_image: str, shared_plan: PlanFactory) -> None:
    kinds, commands = _planned(shared_plan)
    assert sum(len(services) for services in kinds.values()) == 28  # 24, node-exporter, three database exporters
    for index, (kind, services) in enumerate(sorted(kinds.items(), key=str)):
        user, adds, _drops, read_only, tmpfs, _options, pids, sysctls = kind
        assert dict(sysctls) == {"net.ipv4.ping_group_range": "1 0"}, services
        name = f"{PREFIX}-{index}"
        with _container(busybox_image, name, _run_options(kind)):
            # The plan's own `docker update` line, aimed at the stand-in (only the name differs).
            planned = shlex.split(commands[f"dev-{services[0]}"])
            assert planned[:4] == ["docker", "update", "--pids-limit", str(pids)]
            docker(*planned[1:-1], name)
            host = docker("inspect", "-f", "{{json .HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}}", name)
            assert host.split() == [str(pids), str(read_only).lower()], services
            status = _status(name)
            expected = sum(1 << CAP_BITS[c] for c in adds)
            assert int(status["CapBnd"], 16) == expected, (services, status["CapBnd"])
            assert status["NoNewPrivs"].strip() == "1", services
            uid = int(user.split(":")[0]) if user else 0
            assert status["Uid"].split()[:2] == [str(uid), str(uid)], services
            if uid:
                assert int(status["CapEff"], 16) == 0, services  # Docker gives a non-root process none
            code, out = _exec(name, "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max")
            assert (code, out.strip()) == (0, str(pids)), services
            code, out = _exec(name, "ping -c 1 -W 1 127.0.0.1 2>&1")
            assert code != 0, (services, out)
            assert "permission denied" in out.lower(), (services, out)
            assert not _ping_socket(name, 65534), services
            for path, _ in tmpfs:
                code, out = _exec(name, f"touch {path}/probe 2>&1")
                assert code == 0, (services, path, out)
            if read_only:
                code, out = _exec(name, "touch /probe 2>&1; touch /etc/probe 2>&1")
                assert code != 0, (services, out)
                assert "Read-only file system" in out, (services, out)


def test_ping_needs_net_raw_which_no_container_keeps(busybox_image: str) -> None:
    """The ping above fails for want of NET_RAW alone: granted it, the same ping works."""
    options = ["--cap-drop=ALL", "--security-opt=no-new-privileges:true"]
    with _container(busybox_image, f"{PREFIX}-raw", [*options, "--cap-add=NET_RAW"]) as name:
        assert _exec(name, "ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1")[0] == 0
    with _container(busybox_image, f"{PREFIX}-noraw", options) as name:
        assert _exec(name, "ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1")[0] != 0


_PING_SOCKET = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)"


def _ping_socket(name: str, gid: int) -> bool:
    """Whether a process of the group may open an ICMP datagram socket (echo without NET_RAW) in
    the container's network namespace: this host's Python, entered into it (the stand-in has none)."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", name).strip()
    result = subprocess.run(
        ["nsenter", "-t", pid, "-n", "setpriv", f"--regid={gid}", "--clear-groups", sys.executable, "-c", _PING_SOCKET],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 or "PermissionError" in result.stderr, result.stderr
    return result.returncode == 0


def test_ping_sockets_are_closed_by_the_sysctl_alone(busybox_image: str) -> None:
    """Docker opens ICMP datagram sockets to every group; the plan's sysctl closes them."""
    options = ["--cap-drop=ALL", "--security-opt=no-new-privileges:true"]
    with _container(busybox_image, f"{PREFIX}-pingsock", options) as name:
        assert _ping_socket(name, 65534)
    closed = [*options, "--sysctl=net.ipv4.ping_group_range=1 0"]
    with _container(busybox_image, f"{PREFIX}-nopingsock", closed) as name:
        assert not _ping_socket(name, 65534)


def test_forking_beyond_the_pid_limit_fails(busybox_image: str) -> None:
    limit = 32  # the mechanism of the plan's limits (256, 512), small enough to reach quickly
    with _container(busybox_image, f"{PREFIX}-fork", ["--user=65534:65534", "--cap-drop=ALL"]) as name:
        docker("update", "--pids-limit", str(limit), name)
        code, out = _exec(name, f"i=0; while [ $i -lt {limit + 20} ]; do sleep 60 & i=$((i+1)); done 2>&1")
        assert code != 0, out
        assert "can't fork" in out, out
        code, out = _exec(name, "set -- /proc/[0-9]*; echo $#")
        assert (code, out.strip()) == (0, str(limit))  # every slot taken, by sleeps and this shell


def _upload_tar(path: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size = 3
        archive.addfile(info, io.BytesIO(b"ok\n"))
    return buffer.getvalue()


def test_an_upload_through_the_root_is_refused_on_a_read_only_root(busybox_image: str) -> None:
    """The Docker provider uploads each file as a tar extracted at `/` before the container starts:
    refused once the root is read-only, even when the file would land on a volume."""
    volume = f"{PREFIX}-files"
    docker("volume", "create", volume)
    try:
        for read_only in (True, False):
            name = f"{PREFIX}-upload-{read_only}"
            docker("rm", "-f", name, check=False)
            flags = ["--read-only"] if read_only else []
            docker("create", "--name", name, *flags, "-v", f"{volume}:/devstack", busybox_image, "true")
            try:
                for path in ("/devstack/entrypoint.sh", "/etc/config.yml"):
                    result = subprocess.run(
                        ["docker", "cp", "-", f"{name}:/"], input=_upload_tar(path), capture_output=True, check=False
                    )
                    refused = b"container rootfs is marked read-only" in result.stderr
                    assert (result.returncode != 0, refused) == (read_only, read_only), (read_only, path, result)
                # Only a copy aimed at the volume's own folder gets through a read-only root.
                docker("cp", "-", f"{name}:/devstack", stdin=_upload_tar("direct"))
            finally:
                docker("rm", "-f", name, check=False)
    finally:
        docker("volume", "rm", "-f", volume, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _http_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return b"200" in connection.recv(100)
    except OSError:
        return False


@contextlib.contextmanager
def _networks(*specs: tuple[str, str, bool]) -> Iterator[None]:
    try:
        for name, subnet, internal in specs:
            docker("network", "create", *(["--internal"] if internal else []), "--subnet", subnet, name)
        yield
    finally:
        for name, _, _ in specs:
            docker("network", "rm", name, check=False)


def test_internal_networks_drop_published_ports_and_forwarding(busybox_image: str) -> None:
    """What `internal` does here: a container only on internal networks gets no published port at
    all; one more, ordinary network brings the port back (and egress with it). Internal stops
    forwarding beyond the host (a namespace of this test behind the host stands for the outside)
    but not traffic to the host's own addresses."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    octet = os.getpid() % 200 + 20
    internal, ordinary = f"{PREFIX}-int", f"{PREFIX}-ext"
    port = _free_port()
    serve = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"
    with (
        netns.remote_peer() as peer,
        _networks((internal, f"10.252.{octet}.0/24", True), (ordinary, f"10.253.{octet}.0/24", False)),
    ):
        assert peer.run(["ip", "route", "add", "default", "via", peer.host_address]).returncode == 0
        gateway = f"10.252.{octet}.1"  # this host's own address on the internal network
        name = f"{PREFIX}-web"
        docker("rm", "-f", name, check=False)
        try:
            publish = ["-p", f"127.0.0.1:{port}:80"]
            docker("run", "-d", "--name", name, "--network", internal, *publish, busybox_image, "sh", "-c", serve)
            assert docker("port", name).strip() == ""
            assert not _http_ok(port)
            # Egress: the peer's address is one route beyond the host; the host's own is not.
            beyond = f"nc -w 2 {peer.peer_address} 47123 </dev/null"
            with _listener(peer.peer_address, peer.namespace), _listener(gateway):
                assert _exec(name, beyond)[0] != 0  # internal: not forwarded
                assert _exec(name, f"nc -w 2 {gateway} 47123 </dev/null")[0] == 0  # the host itself: reached
                docker("network", "connect", ordinary, name)
                assert docker("port", name).strip() != ""
                assert _wait(lambda: _http_ok(port))
                assert _exec(name, beyond)[0] == 0  # the ordinary network forwards it
        finally:
            docker("rm", "-f", name, check=False)


def _wait(check: Any, tries: int = 20) -> bool:
    for _ in range(tries):
        if check():
            return True
        threading.Event().wait(0.25)
    return False


_ACCEPT_FOREVER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 47123))
server.listen()
print("ready", flush=True)
while True:
    server.accept()[0].close()
"""


@contextlib.contextmanager
def _listener(address: str, namespace: str | None = None) -> Iterator[None]:
    """A TCP listener on port 47123 of the address (inside the namespace, when one is given)."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    process = subprocess.Popen(
        [*prefix, sys.executable, "-c", _ACCEPT_FOREVER, address],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # listening once it says so (a fixed wait was a guess on a loaded machine)
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", f"no listener on {address}:47123"
        yield
    finally:
        process.kill()
        process.wait()
