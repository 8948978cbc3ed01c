"""Vault, the platform's secret store: its catalog entry, its config file (vault.hcl) with its
listeners per TLS mode, and the port `pulumi up` reaches it through. Its container, bootstrap
and provider are components/vault_server.py; every other service reads its own secret here.
"""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    ALWAYS,
    MIGRATION_PORT,
    Flow,
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
from devstack.tls import CA_FILE, CERT_FILE, GO_CIPHER_SUITES, KEY_FILE, TLS_DIR, with_probe

CONFIG_PATH = "/vault/config/vault.hcl"
# The file audit device (from the operations features on) writes here, on a volume of its own:
# the image's log folder, which its entrypoint gives to the vault user before dropping root.
AUDIT_DIR = "/vault/logs"
AUDIT_FILE = f"{AUDIT_DIR}/audit.log"
BOOTSTRAP_PORT = "api"  # `pulumi up` initialises and unseals Vault through it: always published


def host_port_name(tls: TlsMode) -> str:
    """The Vault port `pulumi up` uses: dual mode offers HTTPS on its own port, and this machine
    moves to it at once."""
    return "https" if tls is TlsMode.DUAL else "api"


# The TLS 1.2 suites Vault may use: the Go ones of the other servers with AES-GCM (TLS 1.3 suites
# are not configurable in Go and all strong).
VAULT_CIPHER_SUITES = ",".join(s for s in GO_CIPHER_SUITES if "_GCM_" in s)


def _vault_listener(address: str, tls_dir: str | None, scraped: bool) -> str:
    if tls_dir is None:
        tls = "  tls_disable = true"
    else:
        tls = "\n".join(
            [
                f'  tls_cert_file = "{tls_dir}/{CERT_FILE}"',
                f'  tls_key_file = "{tls_dir}/{KEY_FILE}"',
                '  tls_min_version = "tls12"',
                f'  tls_cipher_suites = "{VAULT_CIPHER_SUITES}"',
            ]
        )
    # Prometheus scrapes /v1/sys/metrics on this listener without holding a Vault token; any
    # other listener asks for one (its default), so the metrics are open on one port only.
    telemetry = "\n  telemetry {\n    unauthenticated_metrics_access = true\n  }" if scraped else ""
    return f"""
listener "tcp" {{
  address = "{address}"
{tls}{telemetry}
}}
"""


def vault_listeners(
    mode: TlsMode, api_port: int, https_port: int, tls_dir: str = TLS_DIR, metrics_port: int | None = None
) -> str:
    """vault.hcl listener blocks: HTTP (off), HTTP plus HTTPS on its own port (dual), HTTPS
    alone on the API port (required). Only the listener on `metrics_port` (the one Prometheus
    scrapes; the API port unless said otherwise) serves its metrics without a token."""
    scraped = api_port if metrics_port is None else metrics_port
    api = _vault_listener(f"0.0.0.0:{api_port}", tls_dir if mode is TlsMode.REQUIRED else None, scraped == api_port)
    if mode is not TlsMode.DUAL:
        return api
    return api + _vault_listener(f"0.0.0.0:{https_port}", tls_dir, scraped == https_port)


def vault_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    """Once plaintext is gone, `vault status` checks the certificate against the CA (exit 0 only
    when unsealed, as the HTTP probe before it)."""
    if mode is not TlsMode.REQUIRED:
        return None
    port = service.port("api").container
    probe = f"VAULT_ADDR=https://localhost:{port} VAULT_CACERT={tls_dir}/{CA_FILE} vault status >/dev/null"
    return with_probe(service, ("CMD-SHELL", probe))


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is TlsMode.OFF:
        return ServerTls()
    return ServerTls(healthcheck=vault_healthcheck(service, mode))


def vault_hcl(service: Service, mode: TlsMode = TlsMode.OFF, mlock: bool = True) -> str:
    """Off: plain HTTP on the API port. Dual: HTTPS on its own port beside it, so clients move
    over one by one. Required: HTTPS on the API port and no plaintext listener at all.
    mlock=False: Vault runs as its own user with no capability (the hardening feature), where
    locking its memory is refused; memory may then reach swap (see docs/security.md)."""
    port = service.port("api").container
    metrics = service.port(service.metrics.port).container if service.metrics else None
    listeners = vault_listeners(mode, port, service.port("https").container, metrics_port=metrics)
    scheme = "https" if mode is TlsMode.REQUIRED else "http"
    mlock_line = "" if mlock else "disable_mlock = true\n"
    return f"""# Vault server, single node with file storage on the protected dev-vault-data volume.
ui = true
{mlock_line}api_addr = "{scheme}://vault:{port}"
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


VAULT = Service(
    name="vault",
    image="hashicorp/vault",
    tag="1.18.5",
    tier=Tier.VAULT,
    host_id=5,
    ports=(Port("api", 8200, 8200), Port("https", 8300, 8300, MIGRATION_PORT)),
    volumes=(VolumeMount("vault-data", "/vault/data"), VolumeMount("vault-audit", AUDIT_DIR)),
    # sys/health answers 501 (uninitialised) and 503 (sealed): only an unsealed Vault is healthy
    healthcheck=Healthcheck(
        http_probe("http://127.0.0.1:8200/v1/sys/health"),
        interval="10s",
        timeout="5s",
        retries=6,
        start_period="60s",
    ),
    limits=Limits(1, 128, weight=1),
    profiles=ALWAYS,
    # hashicorp/vault: vault is uid 100, group 1000 (Alpine's adduser -S / addgroup). Started as that
    # user its entrypoint skips su-exec; SKIP_SETCAP and SKIP_CHOWN stop the steps only root can take
    # (giving the binary cap_ipc_lock, chowning /vault/*). Without IPC_LOCK it cannot lock its
    # memory, so the hardened config turns mlock off (devstack.services.vault.vault_hcl).
    hardening=Hardening(user="100:1000", env=MappingProxyType({"SKIP_SETCAP": "true", "SKIP_CHOWN": "true"})),
    capabilities=("IPC_LOCK",),
    tls=TlsSupport(owner=100, settings=_tls),
    # sys/metrics in Prometheus format, readable without a token on this port's listener only
    # (unauthenticated_metrics_access, above). A sealed Vault answers it with an error, so `up` falls to 0: the
    # "sealed or unreachable" alert is one rule on `up`.
    # The audit counters (hashicorp/vault audit broker: metrics "audit", "log_request_failure" and
    # "log_response_failure", prefixed `vault_` by the Prometheus sink) are the contract with
    # the audit device the operations features add.
    metrics=Metrics(
        "api",
        "/v1/sys/metrics",
        MappingProxyType({"format": "prometheus"}),
        exported=("vault_audit_log_request_failure", "vault_audit_log_response_failure"),
    ),
    joins_client_tiers=True,
)

# How every other service reaches Vault, for its own secret.
VAULT_FLOW = Flow(VAULT.name, "api")
