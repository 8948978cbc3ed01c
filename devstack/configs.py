"""Configuration files the program writes into containers. None of them holds a secret:
passwords reach a service only through the entrypoint wrapper's files."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.credentials import USERS_ACL_KEY
from devstack.model import SECRETS_DIR, Service, account_user
from devstack.phases import TlsMode
from devstack.settings import Settings
from devstack.tls_configs import redis_lines, vault_listeners


@dataclass(frozen=True)
class ConfigFile:
    path: str
    content: str


def vault_hcl(service: Service, mode: TlsMode = TlsMode.OFF) -> str:
    """Off: plain HTTP on the API port. Dual: HTTPS on its own port beside it, so clients move
    over one by one. Required: HTTPS on the API port and no plaintext listener at all."""
    port = service.port("api").container
    listeners = vault_listeners(mode, port, service.port("https").container)
    scheme = "https" if mode is TlsMode.REQUIRED else "http"
    return f"""# Vault server, single node with file storage on the protected dev-vault-data volume.
ui = true
api_addr = "{scheme}://vault:{port}"
default_lease_ttl = "168h"
max_lease_ttl = "720h"

storage "file" {{
  path = "/vault/data"
}}
{listeners}
telemetry {{
  prometheus_retention_time = "24h"
  disable_hostname = true
}}
"""


def redis_conf(settings: Settings, service: Service, cluster: bool) -> str:
    plain, tls_port = service.port("redis").container, service.port("tls").container
    tls = redis_lines(settings.features.tls, plain, tls_port)
    lines = [
        f"# {service.name}: users (password verifiers only) come from the wrapper's tmpfs file.",
        "bind 0.0.0.0",
        "protected-mode yes",
        *(tls or [f"port {plain}"]),
        "dir /data",
        "appendonly yes",
        "maxmemory 256mb",
        "maxmemory-policy allkeys-lru",
        f"aclfile {SECRETS_DIR}/{USERS_ACL_KEY}",
    ]
    if cluster:
        lines += [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            "cluster-node-timeout 5000",
            "cluster-require-full-coverage no",
            # Redirects name the static address, which every cluster client can reach.
            f"cluster-announce-ip {settings.static_ip(service)}",
        ]
    return "\n".join(lines) + "\n"


def pgbouncer_ini(service: Service, postgres: Service, tls_lines: list[str] | None = None) -> str:
    tls = "".join(f"{line}\n" for line in tls_lines or [])
    return f"""; PgBouncer looks clients' SCRAM verifiers up in Postgres through its own auth_user.
[databases]
* = host={postgres.name} port={postgres.port("postgres").container}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = {service.port("pgbouncer").container}
auth_type = scram-sha-256
auth_file = {SECRETS_DIR}/userlist.txt
auth_user = {account_user(service.name)}
auth_query = SELECT username, password FROM pgbouncer.get_auth($1)
auth_dbname = postgres
pool_mode = transaction
max_client_conn = 100
default_pool_size = 10
ignore_startup_parameters = extra_float_digits
{tls}"""
