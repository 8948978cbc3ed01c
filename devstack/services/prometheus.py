"""Prometheus."""

from __future__ import annotations

from devstack.model import FULL, Flow, Healthcheck, Limits, Port, Service, Tier, VolumeMount, http_probe
from devstack.services.apis import APIS

PROMETHEUS = Service(
    name="prometheus",
    image="prom/prometheus",
    tag="v2.55.1",
    tier=Tier.OBSERVABILITY,
    host_id=10,
    ports=(Port("http", 9090, 9090),),
    volumes=(VolumeMount("prometheus-data", "/prometheus"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9090/-/healthy")),
    limits=Limits(1, 1024),
    profiles=FULL,
    flows=(
        Flow("vault", "api"),
        Flow("forgejo", "http"),
        Flow("vector", "metrics"),
        Flow("loki", "http"),
        *(Flow(api.name, "http") for api in APIS),
    ),
)
