"""The platform's services, in catalog order: the one list a new service is registered in.

Each entry comes from the service's own module in devstack/services/, which holds everything
devstack knows about it (registering one is one line here: see docs/architecture.md, "Adding a
service"). The order is the catalog's: it fixes the start order of services that do not depend
on each other, and the order of everything derived from the catalog (volumes, secrets, plans).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from devstack import services
from devstack.model import Flow, Profile, Service


def _checked(entries: tuple[object, ...]) -> tuple[Service, ...]:
    """The entries, each a Service with a name of its own."""
    result = tuple(e for e in entries if isinstance(e, Service))
    if len(result) != len(entries):
        raise TypeError("every catalog entry must be a devstack.model.Service")
    names = [s.name for s in result]
    if len(set(names)) != len(names):
        raise ValueError(f"a service is registered twice: {sorted(n for n in names if names.count(n) > 1)}")
    return result


def _with_scrape_flows(entries: tuple[Service, ...]) -> tuple[Service, ...]:
    """A scraper (Prometheus) gets a flow to every metrics port in the catalog, after its own
    flows: a service registered with a `metrics` hook is scraped, and reachable, without an
    edit to the scraper's module."""
    targets = tuple(
        Flow(s.name, port)
        for s in entries
        if s.metrics is not None
        for port in dict.fromkeys((s.metrics.port, s.metrics.required_port or s.metrics.port))
    )

    def extended(service: Service) -> Service:
        if not service.scrapes_metrics:
            return service
        new = tuple(f for f in targets if f.to != service.name and f not in service.flows)
        return dataclasses.replace(service, flows=service.flows + new)

    return tuple(extended(s) for s in entries)


_REGISTERED: tuple[Service, ...] = _checked(
    (
        services.vault.VAULT,
        services.postgres.POSTGRES,
        services.pgbouncer.PGBOUNCER,
        services.mysql.MYSQL,
        services.redis.NODES[0],
        services.rabbitmq.RABBITMQ,
        services.mongodb.MONGODB,
        services.redis.NODES[1],
        services.redis.NODES[2],
        *services.redis.REPLICAS,
        services.forgejo.FORGEJO,
        *services.apis.APIS,
        services.prometheus.PROMETHEUS,
        services.grafana.GRAFANA,
        services.loki.LOKI,
        *services.exporters.EXPORTERS,
        *services.database_exporters.EXPORTERS,
        services.node_exporter.NODE_EXPORTER,
        services.cadvisor.CADVISOR,
        services.vector.VECTOR,
        services.alertmanager.ALERTMANAGER,
    )
)

SERVICES: tuple[Service, ...] = _with_scrape_flows(_REGISTERED)

SERVICES_BY_NAME: Mapping[str, Service] = MappingProxyType({s.name: s for s in SERVICES})


def services_for(
    profiles: frozenset[Profile], switches: frozenset[str] = frozenset(), features: frozenset[str] | None = None
) -> tuple[Service, ...]:
    """Services of the chosen profiles (those behind a switch or a feature only with it on; every
    feature counts as on when `features` is None) plus everything they need to start, in catalog
    order."""
    chosen = [
        s
        for s in SERVICES
        if (s.switch is None or s.switch in switches)
        and (s.feature is None or features is None or s.feature in features)
    ]
    wanted = {s.name for s in chosen if not s.profiles or s.profiles & profiles}
    pending = list(wanted)
    while pending:
        for dependency in SERVICES_BY_NAME[pending.pop()].depends_on:
            if dependency not in wanted:
                wanted.add(dependency)
                pending.append(dependency)
    return tuple(s for s in SERVICES if s.name in wanted)
