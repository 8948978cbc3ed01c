"""A throwaway copy of a phase's planned network topology on a real Docker engine.

`Lab` reads the offline plan (tools.plan) and recreates its networks (same subnets, gateways
and address ranges) and one placeholder container per service with the same attachments,
static addresses and DNS aliases. Each placeholder is a tiny image made here from Debian's
static busybox; it accepts TCP connections on every active container port of its service
(busybox httpd), so `nc` probes run from inside the containers show which flows the topology
lets through.

Every Docker object is named `dslab-<pid>-...` and labelled `devstack.lab`, so nothing collides
with a real stack on the same engine; a lab removes all it made when its context exits, and
leftovers of a crashed run (its process gone) are removed before the next lab starts. The plan
runs with subnets in 10.<n>.0.0/16, <n> chosen so that no Docker network or host route there
exists. All probe traffic stays between these containers on these bridges; unknown names are
not forwarded to the host's resolvers (each container's DNS fallback is a loopback address
where nothing answers).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.catalog import SERVICES_BY_NAME
from devstack.model import Port, Service
from devstack.settings import Settings, load_settings
from devstack.topology import active_ports
from tools.plan import plan_for, plan_json

STACK = "dev"
CONTAINER_TYPE = "docker:index/container:Container"
NETWORK_TYPE = "docker:index/network:Network"
PLAN_CONTAINER_PREFIX = "dev-"  # the plan names containers dev-<service>

LABEL = "devstack.lab"
NAME_PREFIX = "dslab-"
LEFTOVER_NAME = re.compile(r"^dslab-(\d+)-")

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
IMAGE_REPOSITORY = "devstack-probe"
IMAGE_FORMAT = 1  # bump when the image's layout changes
LIFETIME_SECONDS = 3600  # a placeholder exits by itself after this, should its lab be killed
DEAD_RESOLVER = "127.0.0.1"  # nothing answers DNS there: unknown names never leave the container

SUBNET_CANDIDATES = range(231, 251)  # 10.<n>.0.0/16
ADDRESS_ATTEMPTS = 3
COMMAND_TIMEOUT = 120.0
WORKERS = 8

CONNECT_TIMEOUT = 5  # seconds, for a flow that must connect (only a failing flow waits it out)
BLOCKED_TIMEOUT = 1  # seconds: a blocked flow fails by refusal or by this timeout

CONNECTED = "connected"
REFUSED = "refused"
TIMEOUT = "timeout"
UNRESOLVED = "unresolved"
NO_RESULT = "no result"


class DockerUnavailableError(RuntimeError):
    """No Docker engine answers, or the probe image cannot be built here."""


class DockerCommandError(RuntimeError):
    pass


class AddressRangeTakenError(DockerCommandError):
    """Another network (a concurrent lab's, say) took one of the lab's subnets first."""


def docker(*args: str, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> str:
    try:
        done = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DockerUnavailableError("the docker client is not installed") from None
    if check and done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise DockerCommandError(f"docker {shlex.join(args)[:300]}: exit {done.returncode}: {message}")
    return done.stdout.decode(errors="replace")


def docker_unavailable_reason() -> str | None:
    """Why no Docker engine can be used here, or None when `docker info` works."""
    if shutil.which("docker") is None:
        return "the docker client is not installed (Debian package docker.io)"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` gave no answer within 30s"
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"]
        return f"`docker info` failed (start an engine, e.g. .ci/start-dockerd): {lines[-1]}"
    return None


# ---- the placeholder image -----------------------------------------------------------------


def _is_static_elf(path: Path) -> bool:
    """An ELF executable without a program interpreter runs in an otherwise empty rootfs."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return False
    order = "little" if data[5] == 1 else "big"
    phoff = int.from_bytes(data[0x20:0x28], order)
    entry_size = int.from_bytes(data[0x36:0x38], order)
    count = int.from_bytes(data[0x38:0x3A], order)
    pt_interp = 3
    return all(
        int.from_bytes(data[phoff + i * entry_size : phoff + i * entry_size + 4], order) != pt_interp
        for i in range(count)
    )


def _applets(busybox: Path) -> list[str]:
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=30)
    return sorted({name for name in listed.stdout.split() if name and name != "busybox" and "/" not in name})


def _rootfs_tar(busybox: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("www", 0o755)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in _applets(busybox):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        nsswitch = b"hosts: files dns\n"
        info = tarfile.TarInfo("etc/nsswitch.conf")
        info.size, info.mode = len(nsswitch), 0o644
        tar.addfile(info, io.BytesIO(nsswitch))
    return buffer.getvalue()


def probe_image(busybox: Path = BUSYBOX) -> str:
    """`devstack-probe:<format>-<busybox digest>`, imported once and then reused."""
    if not busybox.is_file() or not _is_static_elf(busybox):
        raise DockerUnavailableError(f"{busybox} is not a static busybox (Debian package busybox-static)")
    digest = hashlib.sha256(busybox.read_bytes()).hexdigest()[:12]
    image = f"{IMAGE_REPOSITORY}:{IMAGE_FORMAT}-{digest}"
    if docker("image", "inspect", image, check=False).strip() not in ("", "[]"):
        return image
    docker("import", "--change", f"LABEL {LABEL}=probe-image", "-", image, stdin=_rootfs_tar(busybox))
    return image


# ---- the plan, as the lab needs it ---------------------------------------------------------


@dataclass(frozen=True)
class PlannedNetwork:
    name: str  # as planned, e.g. dev-data-network
    subnet: str
    gateway: str
    ip_range: str | None


@dataclass(frozen=True)
class PlannedAttachment:
    network: str  # PlannedNetwork.name
    ipv4_address: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class PlannedContainer:
    service: Service
    attachments: tuple[PlannedAttachment, ...]
    ports: tuple[Port, ...]  # the active ones


@dataclass(frozen=True)
class Topology:
    settings: Settings
    networks: tuple[PlannedNetwork, ...]
    containers: tuple[PlannedContainer, ...]

    def container(self, service: str) -> PlannedContainer:
        for container in self.containers:
            if container.service.name == service:
                return container
        raise KeyError(service)


def lab_overrides(octet: int, *extra: str) -> list[str]:
    """Every subnet moved into 10.<octet>.0.0/16, a range the lab owns."""
    base = f"10.{octet}"
    return [
        f"flatSubnet={base}.0.0/16",
        f"vaultSubnet={base}.1.0/24",
        f"dataSubnet={base}.2.0/24",
        f"appSubnet={base}.3.0/24",
        f"observabilitySubnet={base}.4.0/24",
        f"linkSubnet={base}.128.0/17",
        *extra,
    ]


def plan_topology(*overrides: str, avoid: Iterable[int] = ()) -> Topology:
    """The plan with every subnet in a 10.<n>.0.0/16 that nothing on this host uses."""
    remove_leftovers()
    return topology_from_plan(lab_overrides(free_octet(avoid), *overrides))


def topology_from_plan(overrides: Sequence[str], stack: str = STACK) -> Topology:
    """The plan's networks and containers (its JSON form, as `tools.plan --json` prints it)."""
    run = plan_for(stack, overrides)
    settings = load_settings(run.config, stack)
    resources = plan_json(run)["resources"]
    networks = tuple(_network(r["inputs"]) for r in resources if r["type"] == NETWORK_TYPE)
    containers = tuple(_container(settings, r["inputs"]) for r in resources if r["type"] == CONTAINER_TYPE)
    return Topology(settings, networks, containers)


def _network(inputs: Mapping[str, Any]) -> PlannedNetwork:
    (ipam,) = inputs["ipamConfigs"]
    return PlannedNetwork(inputs["name"], ipam["subnet"], ipam["gateway"], ipam.get("ipRange"))


def _container(settings: Settings, inputs: Mapping[str, Any]) -> PlannedContainer:
    name: str = inputs["name"]
    service = SERVICES_BY_NAME[name.removeprefix(PLAN_CONTAINER_PREFIX)]
    attachments = tuple(
        PlannedAttachment(a["name"], a.get("ipv4Address"), tuple(a.get("aliases") or ()))
        for a in inputs["networksAdvanced"]
    )
    return PlannedContainer(service, attachments, active_ports(settings, service))


# ---- address space -------------------------------------------------------------------------


def _docker_subnets() -> list[ipaddress.IPv4Network]:
    ids = docker("network", "ls", "-q").split()
    if not ids:
        return []
    listed = docker("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids)
    subnets = []
    for text in listed.split():
        try:
            subnets.append(ipaddress.IPv4Network(text, strict=False))
        except ValueError:
            continue  # IPv6
    return subnets


def _host_routes() -> list[ipaddress.IPv4Network]:
    """Routed destinations of this host (Linux), other than the default route."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return []
    routes = []
    for line in lines:
        fields = line.split()
        destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        if int(mask):
            routes.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return routes


def free_octet(avoid: Iterable[int] = ()) -> int:
    """The first 10.<n>.0.0/16 that no Docker network and no host route touches."""
    taken = _docker_subnets() + _host_routes()
    skipped = set(avoid)
    for octet in (n for n in SUBNET_CANDIDATES if n not in skipped):
        candidate = ipaddress.IPv4Network(f"10.{octet}.0.0/16")
        if not any(candidate.overlaps(net) for net in taken):
            return octet
    raise DockerCommandError(f"no free 10.<n>.0.0/16 for n in {SUBNET_CANDIDATES.start}-{SUBNET_CANDIDATES.stop - 1}")


# ---- leftovers -----------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user
        return False
    return False


def _stale(name: str) -> bool:
    match = LEFTOVER_NAME.match(name)
    return bool(match) and (int(match.group(1)) == os.getpid() or _process_gone(int(match.group(1))))


def remove_leftovers() -> None:
    """Containers and networks of labs whose process is gone (or of this one)."""
    containers = docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}").split()
    networks = docker("network", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}").split()
    _remove([name for name in containers if _stale(name)], [name for name in networks if _stale(name)])


def _remove(containers: Iterable[str], networks: Iterable[str]) -> None:
    """One at a time, like their creation: Docker 20.10's libnetwork, asked to attach or detach
    many containers of shared networks at once, can leave a phantom endpoint behind (seen here:
    a network that refuses removal, "has active endpoints", until the engine restarts)."""
    for name in containers:
        docker("rm", "-f", name, check=False)
    for name in networks:
        docker("network", "rm", name, check=False)


# ---- probes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    client: str  # service names
    server: str
    target: str  # what the client dials: a name or an address
    port: int
    port_name: str
    expect_connect: bool
    why: str = ""  # shown in failure messages, e.g. "declared flow"

    def describe(self) -> str:
        via = "" if self.target == self.server else f" at {self.target}"
        why = f" [{self.why}]" if self.why else ""
        return f"{self.client} -> {self.server}:{self.port_name} ({self.port}){via}{why}"


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    outcome: str  # CONNECTED, REFUSED, TIMEOUT, UNRESOLVED, NO_RESULT or an error text

    @property
    def ok(self) -> bool:
        return (self.outcome == CONNECTED) == self.probe.expect_connect and self.outcome != NO_RESULT

    def describe(self) -> str:
        expected = "connect" if self.probe.expect_connect else "no connection"
        return f"{self.probe.describe()}: expected {expected}, got {self.outcome}"


# One shell function per probe line: `p ID TARGET PORT SECONDS` prints "R ID EXIT MESSAGE".
_PROBE_FUNCTION = 'p() { out=$(nc -w "$4" "$2" "$3" -e true 2>&1); rc=$?; echo "R $1 $rc" $out; }'
_RESULT_LINE = re.compile(r"^R (\d+) (\d+) ?(.*)$")


def _outcome(exit_code: int, message: str) -> str:
    if exit_code == 0:
        return CONNECTED
    lowered = message.lower()
    for needle, outcome in (("refused", REFUSED), ("timed out", TIMEOUT), ("bad address", UNRESOLVED)):
        if needle in lowered:
            return outcome
    return f"failed ({message.strip() or f'exit {exit_code}'})"


def _probe_script(probes: Sequence[Probe]) -> str:
    lines = ["set -f", _PROBE_FUNCTION]
    for index, probe in enumerate(probes):
        seconds = CONNECT_TIMEOUT if probe.expect_connect else BLOCKED_TIMEOUT
        lines.append(f"p {index} {shlex.quote(probe.target)} {probe.port} {seconds} &")
    lines.append("wait")
    return "\n".join(lines)


def _parse_results(probes: Sequence[Probe], output: str) -> list[ProbeResult]:
    outcomes: dict[int, str] = {}
    for line in output.splitlines():
        match = _RESULT_LINE.match(line.strip())
        if match:
            outcomes[int(match.group(1))] = _outcome(int(match.group(2)), match.group(3))
    return [ProbeResult(probe, outcomes.get(i, NO_RESULT)) for i, probe in enumerate(probes)]


# ---- the lab -------------------------------------------------------------------------------


@dataclass
class Lab:
    """The topology on Docker. Use as a context manager: everything is removed on exit."""

    topology: Topology
    image: str
    prefix: str = field(default_factory=lambda: f"{NAME_PREFIX}{os.getpid()}-")
    services: frozenset[str] | None = None  # a subset of the plan's containers; None: all
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> network -> address
    interface_addresses: dict[str, list[str]] = field(default_factory=dict)  # as seen inside the container

    @property
    def containers(self) -> tuple[PlannedContainer, ...]:
        return tuple(c for c in self.topology.containers if self.services is None or c.service.name in self.services)

    def network_name(self, planned: str) -> str:
        return f"{self.prefix}{planned}"

    def container_name(self, service: str) -> str:
        return f"{self.prefix}{service}"

    def __enter__(self) -> Lab:
        try:
            remove_leftovers()
            self._create_networks()
            for container in self.containers:  # one at a time (see _remove)
                self._create_container(container)
            _in_parallel(self._wait_ready, self.containers)
            self._read_addresses()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Removes this lab's containers and networks; whatever resists, the next lab removes."""
        containers, networks = self.leftovers()
        _remove(containers, networks)

    def leftovers(self) -> tuple[list[str], list[str]]:
        """Names of this lab's containers and networks that exist."""
        label = f"label={LABEL}={self.prefix}"
        containers = docker("ps", "-a", "--filter", label, "--format", "{{.Names}}", check=False).split()
        networks = docker("network", "ls", "--filter", label, "--format", "{{.Name}}", check=False).split()
        return containers, networks

    def _create_networks(self) -> None:
        for network in self.topology.networks:
            ipam = ["--subnet", network.subnet, "--gateway", network.gateway]
            if network.ip_range:
                ipam += ["--ip-range", network.ip_range]
            try:
                docker(
                    "network", "create", "--driver", "bridge", *ipam,
                    "--label", f"{LABEL}={self.prefix}", self.network_name(network.name),
                )  # fmt: skip
            except DockerCommandError as error:
                if any(text in str(error).lower() for text in ("overlaps", "already in use")):
                    raise AddressRangeTakenError(str(error)) from None
                raise

    def _create_container(self, container: PlannedContainer) -> None:
        name = self.container_name(container.service.name)
        first, *others = container.attachments
        listeners = "".join(f"httpd -p {port.container} -h /www && " for port in container.ports)
        script = f"{listeners}touch /tmp/ready && exec sleep {LIFETIME_SECONDS}"
        docker(
            "create", "--name", name, "--hostname", container.service.name,
            "--label", f"{LABEL}={self.prefix}", "--dns", DEAD_RESOLVER,
            *self._attach_options(first, "--network", "--network-alias"),
            self.image, "/bin/sh", "-c", script,
        )  # fmt: skip
        for attachment in others:
            docker("network", "connect", *self._attach_options(attachment, None, "--alias"), name)
        docker("start", name)

    def _attach_options(self, attachment: PlannedAttachment, network_flag: str | None, alias_flag: str) -> list[str]:
        options = [network_flag] if network_flag else []
        options.append(self.network_name(attachment.network))
        if attachment.ipv4_address:
            options += ["--ip", attachment.ipv4_address]
        for alias in attachment.aliases:
            options += [alias_flag, alias]
        if network_flag is None:  # `docker network connect [options] NETWORK CONTAINER`
            options = options[1:] + options[:1]
        return options

    def _wait_ready(self, container: PlannedContainer) -> None:
        """Its listeners bind before `httpd` returns, so the ready file means they all listen.
        Also records the addresses its network namespace really has."""
        name = self.container_name(container.service.name)
        deadline = time.monotonic() + 30
        while True:
            output = docker("exec", name, "/bin/sh", "-c", "test -e /tmp/ready && ip -o -4 addr show", check=False)
            if output:
                break
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "20", name, check=False)
                ports = [port.container for port in container.ports]
                raise DockerCommandError(f"{name} never listened on {ports}: {logs}")
            time.sleep(0.2)
        found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", output)
        self.interface_addresses[container.service.name] = sorted(a for a in found if not a.startswith("127."))

    def _read_addresses(self) -> None:
        names = [self.container_name(c.service.name) for c in self.containers]
        template = "{{.Name}}{{range $n, $e := .NetworkSettings.Networks}} {{$n}}={{$e.IPAddress}}{{end}}"
        for line in docker("inspect", "--format", template, *names).splitlines():
            name, *pairs = line.split()
            service = name.lstrip("/").removeprefix(self.prefix)
            self.addresses[service] = {}
            for pair in pairs:
                network, _, address = pair.partition("=")
                self.addresses[service][network.removeprefix(self.prefix)] = address

    def address_mismatches(self) -> list[str]:
        """Planned static addresses that Docker did not give, attachments it did not make, and
        interfaces that differ from what Docker reports."""
        problems = []
        for container in self.containers:
            actual = self.addresses[container.service.name]
            for attachment in container.attachments:
                got = actual.get(attachment.network)
                if not got:
                    problems.append(f"{container.service.name}: not attached to {attachment.network}")
                elif attachment.ipv4_address and got != attachment.ipv4_address:
                    problems.append(
                        f"{container.service.name} on {attachment.network}: {got}, planned {attachment.ipv4_address}"
                    )
            extra = set(actual) - {a.network for a in container.attachments}
            if extra:
                problems.append(f"{container.service.name}: also attached to {sorted(extra)}")
            inside = self.interface_addresses[container.service.name]
            if inside != sorted(actual.values()):
                problems.append(
                    f"{container.service.name}: has {inside} inside, Docker reports {sorted(actual.values())}"
                )
        return problems

    def run_probes(self, probes: Iterable[Probe]) -> list[ProbeResult]:
        """Each client's probes run at once, in one `docker exec`; the clients run side by side."""
        by_client: dict[str, list[Probe]] = {}
        for probe in probes:
            by_client.setdefault(probe.client, []).append(probe)

        def run(client: str) -> list[ProbeResult]:
            batch = by_client[client]
            output = docker("exec", self.container_name(client), "/bin/sh", "-c", _probe_script(batch))
            return _parse_results(batch, output)

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return [result for results in pool.map(run, sorted(by_client)) for result in results]


@contextlib.contextmanager
def open_lab(image: str, *overrides: str, services: Iterable[str] | None = None) -> Iterator[Lab]:
    """The plan with these overrides, on Docker, in a free address range: when a concurrent lab
    takes the same range first, the next one is tried."""
    tried: list[int] = []
    for attempt in range(1, ADDRESS_ATTEMPTS + 1):
        topology = plan_topology(*overrides, avoid=tried)
        lab = Lab(topology, image, services=None if services is None else frozenset(services))
        try:
            lab.__enter__()
        except AddressRangeTakenError:
            if attempt == ADDRESS_ATTEMPTS:
                raise
            tried.append(topology.settings.subnets.flat.network_address.packed[1])
            continue
        try:
            yield lab
        finally:
            lab.remove()
        return


def _in_parallel(function: Callable[[Any], object], items: Sequence[Any]) -> None:
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        for _ in pool.map(function, items):
            pass
    finally:  # on a failure or an interrupt, start nothing more
        pool.shutdown(wait=True, cancel_futures=True)
