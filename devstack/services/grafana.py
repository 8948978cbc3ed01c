"""Grafana: the catalog entry and its TLS settings (HTTP in dual mode, HTTPS once required)."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    FULL,
    ConfigContext,
    ConfigFile,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    SecretField,
    ServerTls,
    Service,
    Tier,
    TlsSupport,
    VolumeMount,
    http_probe,
    secret_files,
)
from devstack.phases import TlsMode
from devstack.provisioning import grafana_files
from devstack.services.vault import VAULT_FLOW
from devstack.tls import TLS_DIR, curl_probe, https_url, tls_files, with_probe

# Grafana picks its TLS 1.2 suites from the protocol (pkg/api/http_server.go getDefaultCiphers):
# `https` still allows TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA (and static-RSA suites), `h2` only
# ECDHE with AES-GCM or ChaCha20-Poly1305. h2 also serves HTTP/1.1 (ALPN h2, http/1.1).
GRAFANA_PROTOCOL = "h2"


def grafana_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """[server] protocol, cert_file, cert_key, min_tls_version (grafana/grafana
    pkg/setting/setting.go readServerSettings, min_tls_version TLS1.2 or TLS1.3; GF_<SECTION>_<KEY>
    overrides). Checked in grafana revisions from before and after 11.4, not at the v11.4.0 tag,
    whose repository was too large to fetch here. With protocol h2 the default root_url would
    read h2://…, so it is stated: the default with https."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, ca = tls_files(tls_dir)
    port = service.port("http").container
    env = {
        "GF_SERVER_PROTOCOL": GRAFANA_PROTOCOL,
        "GF_SERVER_CERT_FILE": cert,
        "GF_SERVER_CERT_KEY": key,
        "GF_SERVER_MIN_TLS_VERSION": "TLS1.2",
        "GF_SERVER_ROOT_URL": f"https://localhost:{port}/",
    }
    probe = curl_probe(ca, https_url(service, "http", "/api/health"))
    return ServerTls(env=env, healthcheck=with_probe(service, probe))


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    """Data sources and dashboards (devstack.provisioning), read from the image's provisioning
    folder at start."""
    return grafana_files(context.settings, context.selected)


GRAFANA = Service(
    name="grafana",
    image="grafana/grafana",
    tag="11.4.0",
    tier=Tier.OBSERVABILITY,
    host_id=20,
    ports=(Port("http", 3000, 3001),),
    volumes=(VolumeMount("grafana-data", "/var/lib/grafana"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:3000/api/health")),
    limits=Limits(1, 128, weight=1),
    profiles=FULL,
    # grafana/grafana: GF_UID 472, GF_GID 0 in its Dockerfile (group 0 owns its folders, not root's powers).
    hardening=Hardening(user="472:0"),
    depends_on=("vault", "prometheus", "loki"),
    flows=(VAULT_FLOW, Flow("prometheus", "http"), Flow("loki", "http"), Flow("alertmanager", "http")),
    env=MappingProxyType({"GF_SECURITY_ADMIN_USER": "admin"}),
    credentials=Credentials(
        entrypoint=("/run.sh",),
        fields=(SecretField("admin_password"),),
        env=secret_files(GF_SECURITY_ADMIN_PASSWORD__FILE="admin_password"),
        run_as_uid=472,
    ),
    tls=TlsSupport(owner=472, settings=grafana_tls),
    metrics=Metrics("http"),  # [metrics] enabled by default, no basic auth set
    config_files=_config_files,
)
