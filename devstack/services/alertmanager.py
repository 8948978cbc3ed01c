"""Alertmanager: the catalog entry and its config (devstack.alerting): Prometheus's alerts routed
by severity into the developer's inbox, critical silencing warning for the same service."""

from __future__ import annotations

from types import MappingProxyType

from devstack.alerting import alertmanager_yml
from devstack.model import (
    FULL,
    ConfigContext,
    ConfigFile,
    Datasource,
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
from devstack.services.prometheus import prometheus_web_config, promtool_http_config
from devstack.tls import TLS_DIR, https_url, with_probe

# prom/alertmanager:v0.27.0's CMD (prometheus/alertmanager@v0.27.0:Dockerfile) reads this file
# and keeps silences and the notification log in /alertmanager; ENTRYPOINT is /bin/alertmanager,
# so replacing the CMD means restating these.
CONFIG_PATH = "/etc/alertmanager/alertmanager.yml"
ALERTMANAGER_DEFAULT_ARGS: tuple[str, ...] = (f"--config.file={CONFIG_PATH}", "--storage.path=/alertmanager")
WEB_CONFIG = "alertmanager-web.yml"
AMTOOL_HTTP_CONFIG = "amtool-http.yml"


def alertmanager_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """HTTPS only once TLS is required: --web.config.file takes the exporter-toolkit file that
    Prometheus's listener takes too (prometheus/alertmanager@v0.27.0:cmd/alertmanager/main.go).
    The probe is the image's amtool over HTTPS, verifying the CA through --http.config.file
    (cli/root.go), asking the API for the running config."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    web_config, http_config = f"{tls_dir}/{WEB_CONFIG}", f"{tls_dir}/{AMTOOL_HTTP_CONFIG}"
    probe = (
        "CMD",
        "/bin/amtool",
        f"--alertmanager.url={https_url(service, 'http', '')}",
        f"--http.config.file={http_config}",
        "config",
        "show",
    )
    return ServerTls(
        command=(*ALERTMANAGER_DEFAULT_ARGS, f"--web.config.file={web_config}"),
        files={web_config: prometheus_web_config(tls_dir, "Alertmanager"), http_config: promtool_http_config(tls_dir)},
        healthcheck=with_probe(service, probe),
    )


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    return (ConfigFile(CONFIG_PATH, alertmanager_yml(context.selected)),)


ALERTMANAGER = Service(
    name="alertmanager",
    image="prom/alertmanager",
    tag="v0.27.0",
    tier=Tier.OBSERVABILITY,
    host_id=15,
    ports=(Port("http", 9093, 9093),),  # its UI: what fires, and silences
    volumes=(VolumeMount("alertmanager-data", "/alertmanager"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9093/-/healthy")),
    limits=Limits(0.25, 128),
    profiles=FULL,
    # prom/alertmanager: USER nobody (65534) in its Dockerfile; it needs no capability.
    hardening=Hardening(user="65534:65534"),
    depends_on=("vector",),
    flows=(Flow("vector", "alerts"),),
    config_files=_config_files,
    tls=TlsSupport(owner=65534, settings=alertmanager_tls),  # the image runs as nobody
    alerts_port="http",
    # Its notification counters (prometheus/alertmanager@v0.27.0:notify/notify.go).
    metrics=Metrics("http", exported=("alertmanager_notifications_failed_total",)),
    # Grafana's Alerting pages list this Alertmanager's alerts and silences.
    datasource=Datasource(
        "Alertmanager",
        "alertmanager",
        "http",
        MappingProxyType({"implementation": "prometheus", "handleGrafanaManagedAlerts": False}),
    ),
)
