"""Loki."""

from __future__ import annotations

from devstack.model import FULL, Healthcheck, Limits, Port, Service, Tier, VolumeMount, http_probe

LOKI = Service(
    name="loki",
    image="grafana/loki",
    tag="3.3.2",
    tier=Tier.OBSERVABILITY,
    host_id=30,
    ports=(Port("http", 3100, 3100),),
    volumes=(VolumeMount("loki-data", "/loki"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:3100/ready")),
    limits=Limits(1, 1024),
    profiles=FULL,
)
