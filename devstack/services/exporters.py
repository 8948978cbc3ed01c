"""The Redis exporters, one per node with a read-only account on it: the catalog entries and
their TLS settings, as a web server (their metrics listener) and as a client of their node."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    FULL,
    SECRETS_DIR,
    TEMPLATE_DIR,
    ClientRole,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    ServerTls,
    Service,
    Template,
    Tier,
    TlsSupport,
    ValueSyntax,
    account_user,
    http_probe,
    secret_files,
)
from devstack.phases import TlsMode
from devstack.services.redis import NODES
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, TLS_DIR, https_url, merged, tls_files, with_probe


def redis_exporter_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """The exporter's own web listener (not its Redis connection): oliver006/redis_exporter
    @v1.67.0:main.go REDIS_EXPORTER_TLS_SERVER_CERT_FILE, _KEY_FILE, _MIN_VERSION (values
    TLS1.0..TLS1.3, exporter/tls.go). It has no cipher-suite setting: Go's defaults apply.

    Alpine's busybox wget hands TLS to ssl_client, which verifies against /etc/ssl/cert.pem
    (where the platform puts the CA for this image), so the probe verifies."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, _ = tls_files(tls_dir)
    env = {
        "REDIS_EXPORTER_TLS_SERVER_CERT_FILE": cert,
        "REDIS_EXPORTER_TLS_SERVER_KEY_FILE": key,
        "REDIS_EXPORTER_TLS_SERVER_MIN_VERSION": "TLS1.2",
    }
    probe = ("CMD-SHELL", f"wget -q -O /dev/null {https_url(service, 'metrics', '/health')} || exit 1")
    return ServerTls(env=env, healthcheck=with_probe(service, probe))


def redis_exporter_client(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """The exporter's own Redis node: over TLS, verified against the CA, once plaintext is gone.
    Its password file is keyed by that address, so it changes with it."""
    if mode is not TlsMode.REQUIRED or service.credentials is None:
        return ServerTls()
    (template,) = service.credentials.templates
    plain = service.env["REDIS_ADDR"]
    (node,) = [n for n in NODES for f in service.flows if (f.to, f.port) == (n.name, "redis")]
    address = f"rediss://{node.name}:{node.port('tls').container}"
    env = {"REDIS_ADDR": address, "REDIS_EXPORTER_TLS_CA_CERT_FILE": f"{tls_dir}/{CA_FILE}"}
    files = {f"{TEMPLATE_DIR}/{template.name}": template.content.replace(plain, address)}
    return ServerTls(env=env, files=files)


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    return merged(redis_exporter_tls(service, mode), redis_exporter_client(service, mode))


def exporter(index: int) -> Service:
    return Service(
        name=f"redis-exporter-{index}",
        image="oliver006/redis_exporter",
        tag="v1.67.0-alpine",
        tier=Tier.OBSERVABILITY,
        host_id=39 + index,
        ports=(Port("metrics", 9121),),
        healthcheck=Healthcheck(http_probe("http://127.0.0.1:9121/health")),
        limits=Limits(0.25, 32),
        profiles=FULL,
        # oliver006/redis_exporter: USER 59000:59000 in its Dockerfile.
        hardening=Hardening(user="59000:59000"),
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
                    ValueSyntax.JSON,
                ),
            ),
            run_as_uid=59000,
        ),
        system_ca_bundle=True,
        tls=TlsSupport(owner=59000, settings=_tls),
        # oliver006/redis_exporter: exporter/exporter.go (metricMapGauges, metricMapCounters, `up`)
        # and exporter/info.go (CLUSTER INFO fields as redis_cluster_*, state ok -> 1), read at a
        # later revision than v1.67.0: these names are older than it.
        metrics=Metrics(
            "metrics",
            exported=(
                "redis_up",
                "redis_memory_used_bytes",
                "redis_memory_max_bytes",
                "redis_evicted_keys_total",
                "redis_cluster_state",
                "redis_cluster_slots_ok",
                "redis_connected_clients",
                "redis_commands_processed_total",
            ),
            dashboard="redis.json",
        ),
    )


EXPORTERS: tuple[Service, ...] = (exporter(1), exporter(2), exporter(3))
