"""Which services get a certificate, with which names, and when it is renewed."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.model import Service
from devstack.settings import Settings
from devstack.topology import attachments

LEAF_VALIDITY_DAYS = 90
RENEWAL_WINDOW_DAYS = 30
# A new certificate every 60 days: one is never older than 60 days when `pulumi up` runs, so it
# always has at least the 30-day window left, and is replaced on the first run of a new period.
RENEWAL_PERIOD_DAYS = LEAF_VALIDITY_DAYS - RENEWAL_WINDOW_DAYS


@dataclass(frozen=True)
class LeafSpec:
    service: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    owner: int


def tls_services(selected: tuple[Service, ...]) -> tuple[Service, ...]:
    """The TLS-capable services (Service.tls), in catalog order."""
    return tuple(s for s in selected if s.tls is not None)


def leaf_spec(settings: Settings, service: Service) -> LeafSpec:
    """SANs: the service name, its container name, every alias, every static address, localhost."""
    if service.tls is None:
        raise ValueError(f"{service.name} has no TLS support")
    links = attachments(settings, service)
    aliases = [alias for a in links for alias in a.aliases]
    dns = dict.fromkeys([service.name, service.container_name, *aliases, "localhost"])
    addresses = dict.fromkeys([*(a.ipv4_address for a in links if a.ipv4_address), "127.0.0.1"])
    return LeafSpec(service.name, tuple(dns), tuple(addresses), service.tls.owner)
