"""Vault: the platform's secret store, which every other service reads its own secret from."""

from __future__ import annotations

from devstack.model import ALWAYS, MIGRATION_PORT, Healthcheck, Limits, Port, Service, Tier, VolumeMount, http_probe

VAULT = Service(
    name="vault",
    image="hashicorp/vault",
    tag="1.18.5",
    tier=Tier.VAULT,
    host_id=5,
    ports=(Port("api", 8200, 8200), Port("https", 8300, 8300, MIGRATION_PORT)),
    volumes=(VolumeMount("vault-data", "/vault/data"),),
    # sys/health answers 501 (uninitialised) and 503 (sealed): only an unsealed Vault is healthy
    healthcheck=Healthcheck(
        http_probe("http://127.0.0.1:8200/v1/sys/health"),
        interval="10s",
        timeout="5s",
        retries=6,
        start_period="60s",
    ),
    limits=Limits(1, 512),
    profiles=ALWAYS,
    capabilities=("IPC_LOCK",),
)
