"""The Redis exporters: one per Redis node, with a read-only account on it."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    FULL,
    SECRETS_DIR,
    VAULT_FLOW,
    ClientRole,
    Credentials,
    Flow,
    Healthcheck,
    Limits,
    Port,
    Service,
    Template,
    Tier,
    account_user,
    http_probe,
    secret_files,
)


def exporter(index: int) -> Service:
    return Service(
        name=f"redis-exporter-{index}",
        image="oliver006/redis_exporter",
        tag="v1.67.0-alpine",
        tier=Tier.OBSERVABILITY,
        host_id=39 + index,
        ports=(Port("metrics", 9121),),
        healthcheck=Healthcheck(http_probe("http://127.0.0.1:9121/health")),
        limits=Limits(0.25, 128),
        profiles=FULL,
        depends_on=("vault", f"redis-{index}"),
        flows=(VAULT_FLOW, Flow(f"redis-{index}", "redis")),
        env=MappingProxyType(
            {"REDIS_ADDR": f"redis://redis-{index}:6379", "REDIS_USER": account_user(f"redis-exporter-{index}")}
        ),
        client_role=ClientRole.MONITOR,
        credentials=Credentials(
            entrypoint=("/redis_exporter",),
            env=secret_files(REDIS_PASSWORD_FILE="redis-passwords.json"),
            templates=(
                Template(
                    "redis-passwords.json",
                    f"{SECRETS_DIR}/redis-passwords.json",
                    f'{{"redis://redis-{index}:6379": "{{{{redis_password}}}}"}}\n',
                ),
            ),
            run_as_uid=59000,
        ),
        system_ca_bundle=True,
    )


EXPORTERS: tuple[Service, ...] = (exporter(1), exporter(2), exporter(3))
