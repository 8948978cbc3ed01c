"""The platform's services, in catalog order: the one list a new service is registered in.

Each entry comes from the service's own module in devstack/services/, which holds everything
devstack knows about it. The order is the catalog's: it fixes the start order of services that
do not depend on each other, and the order of everything derived from the catalog (volumes,
secrets, plans).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devstack.model import Service
from devstack.services import (
    apis,
    cadvisor,
    exporters,
    forgejo,
    grafana,
    loki,
    mongodb,
    mysql,
    pgbouncer,
    postgres,
    prometheus,
    rabbitmq,
    redis,
    vault,
    vector,
)

redis_1, redis_2, redis_3 = redis.NODES

SERVICES: tuple[Service, ...] = (
    vault.VAULT,
    postgres.POSTGRES,
    pgbouncer.PGBOUNCER,
    mysql.MYSQL,
    redis_1,
    rabbitmq.RABBITMQ,
    mongodb.MONGODB,
    redis_2,
    redis_3,
    forgejo.FORGEJO,
    *apis.APIS,
    prometheus.PROMETHEUS,
    grafana.GRAFANA,
    loki.LOKI,
    *exporters.EXPORTERS,
    cadvisor.CADVISOR,
    vector.VECTOR,
)

SERVICES_BY_NAME: Mapping[str, Service] = MappingProxyType({s.name: s for s in SERVICES})
