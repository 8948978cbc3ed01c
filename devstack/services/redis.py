"""The three Redis nodes: a cluster in standard and full, redis-1 alone in minimal."""

from __future__ import annotations

from devstack.model import (
    MIN_UP,
    PLAIN_BESIDE_TLS,
    STD_UP,
    TLS_PORT,
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
    shell,
)


def node(index: int, host_id: int, host_port: int, tls_host_port: int) -> Service:
    others = [n for n in (1, 2, 3) if n != index]
    return Service(
        name=f"redis-{index}",
        image="redis",
        tag="7.4.2-alpine3.21",
        tier=Tier.DATA,
        host_id=host_id,
        ports=(
            Port("redis", 6379, host_port, PLAIN_BESIDE_TLS),
            Port("tls", 6380, tls_host_port, TLS_PORT),
            Port("bus", 16379),  # cluster gossip stays between the nodes
        ),
        volumes=(VolumeMount(f"redis-{index}-data", "/data"),),
        # A NOAUTH reply still proves the server answers; the password stays out of argv.
        healthcheck=Healthcheck(
            shell("redis-cli -p 6379 ping | grep -Eq 'PONG|NOAUTH'"),
            interval="15s",
            timeout="5s",
            retries=5,
            start_period="10s",
        ),
        limits=Limits(1, 512),
        profiles=MIN_UP if index == 1 else STD_UP,
        depends_on=("vault",),
        flows=(VAULT_FLOW, *(Flow(f"redis-{n}", p) for n in others for p in ("redis", "bus"))),
        # The node's config has no secret; its users (verifiers only) come as a file.
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "redis-server", "/devstack/redis.conf"),
            fields=(SecretField("password"),),
            owner="redis:redis",
            shared_with="redis-cluster",
        ),
        system_ca_bundle=True,
    )


NODES: tuple[Service, ...] = (node(1, 13, 6379, 6390), node(2, 16, 6380, 6391), node(3, 17, 6381, 6392))
