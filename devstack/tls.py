"""Which services get a certificate, with which names, and where its files go."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.model import Service
from devstack.settings import Settings
from devstack.topology import attachments

TLS_DIR = "/devstack/tls"
CERT_FILE, KEY_FILE, CA_FILE = "server.crt", "server.key", "ca.crt"
LEAF_VALIDITY_DAYS = 90
RENEWAL_WINDOW_DAYS = 30
# A new certificate every 60 days: one is never older than 60 days when `pulumi up` runs, so it
# always has at least the 30-day window left, and is replaced on the first run of a new period.
RENEWAL_PERIOD_DAYS = LEAF_VALIDITY_DAYS - RENEWAL_WINDOW_DAYS

# TLS-capable service -> the uid its server process runs as (servers refuse a key they cannot
# read, and Postgres one that others can).
TLS_OWNERS: dict[str, int] = {
    "vault": 100,
    "postgres": 999,
    "pgbouncer": 70,
    "mysql": 999,
    "redis-1": 999,
    "redis-2": 999,
    "redis-3": 999,
    "rabbitmq": 100,
    "mongodb": 999,
    "forgejo": 1000,
    "reference-api": 0,
    "api-first": 0,
    "golang-api": 0,
    "nodejs-api": 0,
    # rust-api: Rust's standard library has no TLS, and the app fetches nothing at start.
    "prometheus": 65534,
    "grafana": 472,
    "loki": 10001,
    "redis-exporter-1": 59000,
    "redis-exporter-2": 59000,
    "redis-exporter-3": 59000,
}


# Servers that want the certificate, its chain and the key in one file.
COMBINED_PEM: dict[str, str] = {"mongodb": "mongodb.pem"}


@dataclass(frozen=True)
class LeafSpec:
    service: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    owner: int


def tls_services(selected: tuple[Service, ...]) -> tuple[Service, ...]:
    return tuple(s for s in selected if s.name in TLS_OWNERS)


def leaf_spec(settings: Settings, service: Service) -> LeafSpec:
    """SANs: the service name, its container name, every alias, every static address, localhost."""
    links = attachments(settings, service)
    aliases = [alias for a in links for alias in a.aliases]
    dns = dict.fromkeys([service.name, service.container_name, *aliases, "localhost"])
    addresses = dict.fromkeys([*(a.ipv4_address for a in links if a.ipv4_address), "127.0.0.1"])
    return LeafSpec(service.name, tuple(dns), tuple(addresses), TLS_OWNERS[service.name])
