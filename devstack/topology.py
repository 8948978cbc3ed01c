"""Which services run and which networks they join: pure functions of Settings and the catalog."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from devstack.catalog import SERVICES, SERVICES_BY_NAME, services_for
from devstack.model import Port, Service, Tier
from devstack.settings import Settings

FLAT_NETWORK = "dev-network"
FLAT_KEY = "network"
LINK_PREFIX = 28  # 14 usable addresses: a client and up to a dozen servers


@dataclass(frozen=True)
class NetworkSpec:
    key: str  # stable resource name
    docker_name: str
    subnet: str
    gateway: str
    ip_range: str | None = None  # where Docker picks addresses for attachments without one


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
    return services_for(settings.profiles, settings.switches, settings.features.enabled())


def _spec(key: str, name: str, subnet: ipaddress.IPv4Network, ip_range: str | None = None) -> NetworkSpec:
    return NetworkSpec(key, name, str(subnet), str(subnet.network_address + 1), ip_range)


@dataclass(frozen=True)
class Link:
    """A small network that lets one client reach its servers in another tier, and nothing else."""

    client: str
    tier: Tier
    servers: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"link-{self.client}-{self.tier.value}"


def cross_tier_links(services: tuple[Service, ...] = SERVICES) -> tuple[Link, ...]:
    """Derived from the flows: one link per (client, foreign tier) it talks to. Vault's tier is
    not linked: Vault joins every tier it serves instead."""
    links: dict[tuple[str, Tier], list[str]] = {}
    names = {s.name for s in services}
    for client in services:
        for flow in client.flows:
            server = SERVICES_BY_NAME[flow.to]
            if server.tier in (client.tier, Tier.VAULT) or flow.to not in names:
                continue
            members = links.setdefault((client.name, server.tier), [])
            if server.name not in members:
                members.append(server.name)
    return tuple(Link(client, tier, tuple(servers)) for (client, tier), servers in links.items())


def client_tiers(server: Service, services: tuple[Service, ...]) -> tuple[Tier, ...]:
    """The other tiers whose services talk to the server (Vault joins each of them)."""
    tiers = {s.tier for s in services for f in s.flows if f.to == server.name}
    return tuple(t for t in Tier if t in tiers and t is not server.tier)


def _link_subnets(settings: Settings) -> dict[str, ipaddress.IPv4Network]:
    # Numbered over the whole catalog, so a profile change never renumbers a link.
    pool = settings.subnets.links.subnets(new_prefix=LINK_PREFIX)
    return {link.key: next(pool) for link in cross_tier_links()}


def networks(settings: Settings) -> tuple[NetworkSpec, ...]:
    if not settings.features.segmentation:
        return (_spec(FLAT_KEY, FLAT_NETWORK, settings.subnets.flat),)
    tiers = tuple(
        _spec(tier_key(t), f"dev-{t.value}-network", settings.subnets.tiers[t], str(settings.subnets.dynamic_range(t)))
        for t in Tier
    )
    subnets = _link_subnets(settings)
    selected = selected_services(settings)
    links = tuple(_spec(link.key, f"dev-{link.key}", subnets[link.key]) for link in cross_tier_links(selected))
    return tiers + links


def tier_key(tier: Tier) -> str:
    # The Vault tier keeps the flat network's resource name: moving between phase 0 and 1 then
    # replaces that one network (old one deleted first), and the other networks, which depend
    # on it, are created only once the flat subnet that contains them is gone.
    return FLAT_KEY if tier is Tier.VAULT else f"{tier.value}-network"


def attachments(settings: Settings, service: Service) -> tuple[Attachment, ...]:
    aliases = (service.name,)
    if not settings.features.segmentation:
        return (Attachment(FLAT_KEY, settings.static_ip(service), aliases),)
    result = [Attachment(tier_key(service.tier), settings.static_ip(service), aliases)]
    selected = selected_services(settings)
    if service.joins_client_tiers:
        for tier in client_tiers(service, selected):
            address = settings.subnets.tiers[tier].network_address + service.host_id
            result.append(Attachment(tier_key(tier), str(address), aliases))
    for link in cross_tier_links(selected):
        if service.name == link.client or service.name in link.servers:
            result.append(Attachment(link.key, None, aliases))
    return tuple(result)


def host_addresses(settings: Settings, service: Service) -> tuple[str, ...]:
    """Where a connection from this machine to the service's published ports comes from, as the
    container sees it: the gateway of one of its networks (Docker's proxy, or its NAT for a
    loopback client, connects from the bridge's own address, which only the host holds)."""
    gateways = {spec.key: spec.gateway for spec in networks(settings)}
    return tuple(dict.fromkeys(gateways[a.network] for a in attachments(settings, service)))


def host_cidrs(settings: Settings, service: Service) -> tuple[str, ...]:
    """The host addresses above as /32 blocks: what a role or token for this machine is bound to."""
    return tuple(f"{address}/32" for address in host_addresses(settings, service))


def active_ports(settings: Settings, service: Service) -> tuple[Port, ...]:
    """The ports a service listens on in this TLS mode (TLS ports from dual on, the migration's
    extra ports in dual only, plaintext beside TLS until TLS is required)."""
    return tuple(p for p in service.ports if settings.features.tls in p.open_in)


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
