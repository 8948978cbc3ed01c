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
    Healthcheck,
    Limits,
    Metrics,
    Port,
    Service,
    Tier,
    VolumeMount,
    http_probe,
)

# prom/alertmanager:v0.27.0's CMD (prometheus/alertmanager@v0.27.0:Dockerfile) reads this file
# and keeps silences and the notification log in /alertmanager.
CONFIG_PATH = "/etc/alertmanager/alertmanager.yml"


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
    depends_on=("vector",),
    flows=(Flow("vector", "alerts"),),
    config_files=_config_files,
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
