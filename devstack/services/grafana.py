"""Grafana."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    FULL,
    VAULT_FLOW,
    Credentials,
    Flow,
    Healthcheck,
    Limits,
    Port,
    SecretField,
    Service,
    Tier,
    VolumeMount,
    http_probe,
    secret_files,
)

GRAFANA = Service(
    name="grafana",
    image="grafana/grafana",
    tag="11.4.0",
    tier=Tier.OBSERVABILITY,
    host_id=20,
    ports=(Port("http", 3000, 3001),),
    volumes=(VolumeMount("grafana-data", "/var/lib/grafana"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:3000/api/health")),
    limits=Limits(1, 512),
    profiles=FULL,
    depends_on=("vault", "prometheus", "loki"),
    flows=(VAULT_FLOW, Flow("prometheus", "http"), Flow("loki", "http")),
    env=MappingProxyType({"GF_SECURITY_ADMIN_USER": "admin"}),
    credentials=Credentials(
        entrypoint=("/run.sh",),
        fields=(SecretField("admin_password"),),
        env=secret_files(GF_SECURITY_ADMIN_PASSWORD__FILE="admin_password"),
        run_as_uid=472,
    ),
)
