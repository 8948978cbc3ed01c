"""Vector: container logs and metrics to Loki."""

from __future__ import annotations

from devstack.model import (
    FULL,
    ClientRole,
    Credentials,
    Flow,
    Healthcheck,
    HostBind,
    Limits,
    Port,
    Service,
    Tier,
    http_probe,
)
from devstack.services.exporters import EXPORTERS
from devstack.services.vault import VAULT_FLOW

VECTOR = Service(
    name="vector",
    image="timberio/vector",
    tag="0.50.0-alpine",
    tier=Tier.OBSERVABILITY,
    host_id=60,
    ports=(Port("api", 8686), Port("metrics", 9598), Port("alerts", 9601)),
    # Container logs as read-only files, instead of the Docker socket (host root).
    binds=(HostBind("/var/lib/docker/containers", "/var/lib/docker/containers"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:8686/health")),
    limits=Limits(1, 512),
    profiles=FULL,
    depends_on=("vault", "postgres", "mongodb", "loki"),
    flows=(
        VAULT_FLOW,
        Flow("loki", "http"),
        Flow("postgres", "postgres"),
        Flow("mongodb", "mongodb"),
        Flow("rabbitmq", "metrics"),
        Flow("cadvisor", "http"),
        *(Flow(exporter.name, "metrics") for exporter in EXPORTERS),
    ),
    client_role=ClientRole.MONITOR,
    # Vector's `directory` secret backend reads the wrapper's files.
    credentials=Credentials(entrypoint=("/usr/local/bin/vector",)),
    system_ca_bundle=True,
    alert_inbox="alerts",  # Alertmanager's webhook: each notification becomes a log line in Loki
)
