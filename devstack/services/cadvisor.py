"""cAdvisor: container metrics (CPU, memory, block I/O) from the host's cgroup tree, confined."""

from __future__ import annotations

from devstack.model import FULL, Hardening, Healthcheck, Limits, Metrics, Port, Service, Tier, http_probe

CADVISOR = Service(
    name="cadvisor",
    image="gcr.io/cadvisor/cadvisor",
    tag="v0.51.0",
    tier=Tier.OBSERVABILITY,
    host_id=50,
    ports=(Port("http", 8080),),  # never published: Vector scrapes it inside the network
    # Its metrics are every container's cgroup files (CPU, memory, block I/O), read from the
    # host's cgroup tree as Docker mounts it, read-only. No host path (/, /sys or
    # /var/lib/docker would hold the keys, the Pulumi state, every layer and volume), no
    # docker.sock, no root, no capability; the metrics that would need them are off.
    command=("--enable_metrics=cpu,memory,diskIO",),
    user="65532:65532",  # a uid:gid no other image here runs as
    confined=True,
    host_cgroups=True,
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:8080/healthz")),
    limits=Limits(0.5, 64),
    profiles=FULL,
    # No upload and nothing written: the one container whose root filesystem can be read-only.
    hardening=Hardening(user="65532:65532"),
    # With only cpu, memory and diskIO on (google/cadvisor@v0.51.0: metrics/prometheus.go, the
    # memory group and the container spec metrics, which are always on).
    metrics=Metrics(
        "http",
        exported=(
            "container_memory_working_set_bytes",
            "container_spec_memory_limit_bytes",
            "container_start_time_seconds",  # a spec metric too: it changes at each restart
        ),
    ),
)
