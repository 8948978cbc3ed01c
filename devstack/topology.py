"""Which services run and which networks they join: pure functions of Settings and the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.catalog import SERVICES, SERVICES_BY_NAME, Port, Service
from devstack.phases import TlsMode
from devstack.settings import Settings

FLAT_NETWORK = "dev-network"


@dataclass(frozen=True)
class NetworkSpec:
    key: str  # stable resource name
    docker_name: str
    subnet: str
    gateway: str


@dataclass(frozen=True)
class Attachment:
    network: str  # NetworkSpec.key
    ipv4_address: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class PublishedPort:
    name: str
    container: int
    host: int
    bind_address: str


def selected_services(settings: Settings) -> tuple[Service, ...]:
    """Services of the chosen profiles plus everything they need to start, in catalog order."""
    wanted = {s.name for s in SERVICES if not s.profiles or s.profiles & settings.profiles}
    pending = list(wanted)
    while pending:
        for dependency in SERVICES_BY_NAME[pending.pop()].depends_on:
            if dependency not in wanted:
                wanted.add(dependency)
                pending.append(dependency)
    return tuple(s for s in SERVICES if s.name in wanted)


def networks(settings: Settings) -> tuple[NetworkSpec, ...]:
    # Tier networks and their flow-derived membership come with the segmentation feature.
    flat = settings.subnets.flat
    return (NetworkSpec("network", FLAT_NETWORK, str(flat), str(flat.network_address + 1)),)


def attachments(settings: Settings, service: Service) -> tuple[Attachment, ...]:
    return (Attachment("network", settings.static_ip(service), (service.name,)),)


def active_ports(settings: Settings, service: Service) -> tuple[Port, ...]:
    tls_on = settings.features.tls is not TlsMode.OFF
    return tuple(p for p in service.ports if tls_on or not p.tls_only)


def published_ports(settings: Settings, service: Service) -> tuple[PublishedPort, ...]:
    """Ports bound on the host, only ever on the configured bind address."""
    published = []
    for port in active_ports(settings, service):
        host = settings.host_port(service, port.name)
        if host is not None:
            published.append(PublishedPort(port.name, port.container, host, settings.bind_address))
    return tuple(published)


def start_dependencies(selected: tuple[Service, ...], service: Service) -> tuple[str, ...]:
    names = {s.name for s in selected}
    return tuple(d for d in service.depends_on if d in names)
