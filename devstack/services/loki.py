"""Loki: the catalog entry and its TLS settings (HTTP in dual mode, HTTPS once required)."""

from __future__ import annotations

import yaml

from devstack.model import (
    FULL,
    ConfigContext,
    ConfigFile,
    Datasource,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    ServerTls,
    Service,
    Tier,
    TlsSupport,
    VolumeMount,
    http_probe,
)
from devstack.phases import TlsMode
from devstack.tls import GO_CIPHER_SUITES, TLS_DIR, https_url, tls_files, with_probe

# grafana/loki:3.3.2's CMD (grafana/loki@v3.3.2:cmd/loki/Dockerfile, the file the release
# workflow builds); ENTRYPOINT is /usr/bin/loki.
LOKI_DEFAULT_ARGS: tuple[str, ...] = ("-config.file=/etc/loki/local-config.yaml",)


def loki_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """HTTP TLS flags of grafana/dskit@53283a0f6b41 (the version loki v3.3.2 requires):
    server/server.go -server.http-tls-cert-path, -server.http-tls-key-path,
    -server.tls-min-version (VersionTLS12), -server.tls-cipher-suites (Go names,
    server/tls_config.go); command-line flags override the config file (loki@v3.3.2:
    pkg/util/cfg/dynamic.go). gRPC (9095, not published) stays as the config file has it.

    The image is distroless with busybox, whose wget cannot verify a certificate: the probe is
    a liveness check over TLS only (it sends no secret)."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, _ = tls_files(tls_dir)
    command = (
        *LOKI_DEFAULT_ARGS,
        f"-server.http-tls-cert-path={cert}",
        f"-server.http-tls-key-path={key}",
        "-server.tls-min-version=VersionTLS12",
        f"-server.tls-cipher-suites={','.join(GO_CIPHER_SUITES)}",
    )
    url = https_url(service, "http", "/ready")
    probe = ("CMD-SHELL", f"wget -q --no-check-certificate -O /dev/null {url} || exit 1")
    return ServerTls(command=command, healthcheck=with_probe(service, probe))


LOKI_CONFIG = "/etc/loki/local-config.yaml"  # the path the image's CMD names
RETENTION = "168h"  # a week of logs on a laptop


def loki_config(service: Service) -> str:
    """Single binary, filesystem storage on the protected dev-loki-data volume (/loki), TSDB
    index (schema v13), a week's retention applied by the compactor, no usage reporting to
    Grafana Labs. Keys: grafana/loki@v3.3.2 docs/sources/shared/configuration.md (server,
    common, schema_config, limits_config, compactor, analytics)."""
    config = {
        "auth_enabled": False,
        "server": {"http_listen_port": service.port("http").container, "grpc_listen_port": 9095},
        "common": {
            "instance_addr": "127.0.0.1",
            "path_prefix": "/loki",
            "storage": {"filesystem": {"chunks_directory": "/loki/chunks", "rules_directory": "/loki/rules"}},
            "replication_factor": 1,
            "ring": {"kvstore": {"store": "inmemory"}},
        },
        "schema_config": {
            "configs": [
                {
                    "from": "2024-01-01",
                    "store": "tsdb",
                    "object_store": "filesystem",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "limits_config": {"retention_period": RETENTION},
        "compactor": {
            "working_directory": "/loki/compactor",
            "retention_enabled": True,
            "delete_request_store": "filesystem",
        },
        "analytics": {"reporting_enabled": False},
    }
    return "# devstack: generated (devstack/services/loki.py); do not edit.\n" + yaml.safe_dump(config, sort_keys=False)


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    return (ConfigFile(LOKI_CONFIG, loki_config(service)),)


LOKI = Service(
    name="loki",
    image="grafana/loki",
    tag="3.3.2",
    tier=Tier.OBSERVABILITY,
    host_id=30,
    ports=(Port("http", 3100, 3100),),
    volumes=(VolumeMount("loki-data", "/loki"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:3100/ready")),
    limits=Limits(1, 192, weight=2),
    profiles=FULL,
    # grafana/loki: USER 10001 (group loki, 10001) in its Dockerfile.
    hardening=Hardening(user="10001:10001"),
    tls=TlsSupport(owner=10001, settings=loki_tls),
    metrics=Metrics("http"),
    datasource=Datasource("Loki", "loki", "http"),
    config_files=_config_files,
)
