"""cAdvisor: container metrics from read-only host views."""

from __future__ import annotations

from devstack.model import FULL, Healthcheck, HostBind, Limits, Port, Service, Tier, http_probe

CADVISOR = Service(
    name="cadvisor",
    image="gcr.io/cadvisor/cadvisor",
    tag="v0.51.0",
    tier=Tier.OBSERVABILITY,
    host_id=50,
    ports=(Port("http", 8080),),
    # Read-only views, no docker.sock and no SYS_ADMIN: cgroup metrics without host root.
    binds=(
        HostBind("/", "/rootfs"),
        HostBind("/sys", "/sys"),
        HostBind("/var/lib/docker", "/var/lib/docker"),
    ),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:8080/healthz")),
    limits=Limits(0.5, 256),
    profiles=FULL,
)
