"""Grafana's provisioning, generated: data sources for every running service that declares one
(`Service.datasource`: Prometheus, Loki, Alertmanager), over HTTPS verified by the platform's CA
once TLS is required, and the dashboards: an overview built from the catalog (every scraped
service up, Vault's state) and each service's own JSON file (`Metrics.dashboard`, beside its
module in devstack/services/dashboards/).

Keys: Grafana's provisioning files (grafana/grafana pkg/services/provisioning/datasources and
dashboards, apiVersion 1); `$__file{...}` reads the CA from the file the platform uploads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from devstack.model import ConfigFile, Service
from devstack.monitoring import APPROLE_METRIC, BACKUP_METRIC, CERTIFICATE_METRIC
from devstack.phases import TlsMode
from devstack.tls import CA_FILE, TLS_DIR

if TYPE_CHECKING:
    from devstack.settings import Settings

DASHBOARDS_DIR = Path(__file__).resolve().parent / "services" / "dashboards"
PROVISIONING = "/etc/grafana/provisioning"
DASHBOARD_FILES = "/etc/grafana/dashboards"  # not the data volume: the files are the plan's
OVERVIEW_UID = "devstack-overview"


def datasource_url(service: Service, mode: TlsMode) -> str:
    assert service.datasource is not None
    scheme = "https" if mode is TlsMode.REQUIRED and service.tls is not None else "http"
    return f"{scheme}://{service.name}:{service.port(service.datasource.port).container}"


def datasources_yml(selected: Sequence[Service], mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    sources = []
    for service in selected:
        if service.datasource is None:
            continue
        source: dict = {
            "name": service.datasource.name,
            "uid": f"devstack-{service.name}",
            "type": service.datasource.type,
            "access": "proxy",
            "url": datasource_url(service, mode),
            "editable": False,
        }
        json_data = dict(service.datasource.json_data)
        if source["url"].startswith("https://"):
            json_data["tlsAuthWithCACert"] = True
            source["secureJsonData"] = {"tlsCACert": f"$__file{{{tls_dir}/{CA_FILE}}}"}
        if json_data:
            source["jsonData"] = json_data
        sources.append(source)
    document = {"apiVersion": 1, "datasources": sources}
    return "# devstack: generated (devstack/provisioning.py); do not edit.\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def dashboards_yml() -> str:
    document = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "devstack",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARD_FILES},
            }
        ],
    }
    return "# devstack: generated (devstack/provisioning.py); do not edit.\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def _panel(panel_id: int, title: str, expr: str, legend: str, y: int) -> dict:
    return {
        "id": panel_id,
        "type": "stat",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "devstack-prometheus"},
        "gridPos": {"h": 8, "w": 24, "x": 0, "y": y},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
        "options": {"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
        "fieldConfig": {
            "defaults": {
                "mappings": [{"type": "value", "options": {"0": {"text": "down"}, "1": {"text": "up"}}}],
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
            }
        },
    }


def _days_left(panel_id: int, title: str, metric: str, y: int) -> dict:
    """Days until a generated not-after (devstack.monitoring's recording rules), per service."""
    panel = _panel(panel_id, title, f"({metric} - time()) / 86400", "{{service}}", y)
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "d",
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": 7},
                    {"color": "green", "value": 21},
                ],
            },
        }
    }
    return panel


def _backup_age(panel_id: int, y: int) -> dict:
    """Hours since each store's last good backup (the textfile tools.backup writes), coloured
    at the backup rules' thresholds (policies/alerts/node.yml: 26 hours, 3 days)."""
    panel = _panel(panel_id, "Last good backup, hours ago", f"(time() - {BACKUP_METRIC}) / 3600", "{{store}}", y)
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "h",
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "green", "value": None},
                    {"color": "orange", "value": 26},
                    {"color": "red", "value": 72},
                ],
            },
        }
    }
    return panel


def overview(selected: Sequence[Service]) -> dict:
    """Every scraped service, up or down; Vault on its own (down also when sealed); days left on
    the certificates and the secret_ids; the age of each store's last good backup."""
    scraped = "|".join(s.name for s in selected if s.metrics is not None)
    return {
        "uid": OVERVIEW_UID,
        "title": "devstack overview",
        "tags": ["devstack"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "panels": [
            _panel(1, "Services up", f'up{{service=~"{scraped}"}}', "{{service}}", 0),
            _panel(2, "Vault (down when sealed or unreachable)", 'up{job="vault"}', "vault", 8),
            _days_left(3, "Certificate days left (TLS on)", CERTIFICATE_METRIC, 16),
            _days_left(4, "Earliest secret_id expiry, days (AppRole on)", APPROLE_METRIC, 24),
            _backup_age(5, 32),
        ],
    }


def service_dashboards(selected: Sequence[Service]) -> dict[str, str]:
    """File name -> content of each running service's own dashboard (one file per family)."""
    found: dict[str, str] = {}
    for service in selected:
        if service.metrics is not None and service.metrics.dashboard is not None:
            name = service.metrics.dashboard
            found[name] = (DASHBOARDS_DIR / name).read_text()
    return found


def grafana_files(settings: Settings, selected: Sequence[Service], tls_dir: str = TLS_DIR) -> tuple[ConfigFile, ...]:
    files = [
        ConfigFile(
            f"{PROVISIONING}/datasources/devstack.yml", datasources_yml(selected, settings.features.tls, tls_dir)
        ),
        ConfigFile(f"{PROVISIONING}/dashboards/devstack.yml", dashboards_yml()),
        ConfigFile(f"{DASHBOARD_FILES}/overview.json", json.dumps(overview(selected), indent=2) + "\n"),
    ]
    files += [ConfigFile(f"{DASHBOARD_FILES}/{name}", text) for name, text in service_dashboards(selected).items()]
    return tuple(files)
