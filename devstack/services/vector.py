"""Vector: container logs and Alertmanager's notifications to Loki, and its own metrics.

Its config (/etc/vector/vector.yaml, the file the image's vector reads by default) is generated
here. Keys: vectordotdev/vector v0.50 docs, reference/configuration (sources `file`,
`http_server`, `internal_metrics`; transform `remap`; sinks `loki`, `prometheus_exporter`).
Debian has no Vector, so no checker runs it: tests/test_logs.py checks its structure."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from devstack.alerting import INBOX_PATH
from devstack.model import (
    FULL,
    SECRETS_DIR,
    ClientRole,
    ConfigContext,
    ConfigFile,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    HostBind,
    Limits,
    Metrics,
    Port,
    Service,
    Tier,
    http_probe,
)
from devstack.phases import TlsMode
from devstack.services.exporters import EXPORTERS
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, TLS_DIR

VECTOR_CONFIG = "/etc/vector/vector.yaml"
DOCKER_LOGS = "/var/lib/docker/containers"
# Each container's json-file log line carries this label of its container in `attrs` (the
# engine's `labels` log option, components/service.py): the service name, without the socket.
SERVICE_LABEL = "devstack.service"
LOKI_FLOW = Flow("loki", "http")

# VRL: a json-file line {"log", "stream", "time", "attrs"} -> message, stream, service.
_DOCKER_REMAP = f"""parsed, err = parse_json(string!(.message))
if err == null && is_object(parsed) {{
  .message = parsed.log
  .stream = parsed.stream
  .service = parsed.attrs."{SERVICE_LABEL}"
}}
if !is_string(.service) {{
  .service = "unknown"
}}
"""
_ALERTS_REMAP = """.service = "alertmanager"
.stream = "alerts"
"""


class _Dumper(yaml.SafeDumper):
    """VRL programs as YAML literal blocks, readable in the shipped file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _loki_endpoint(selected: Sequence[Service], mode: TlsMode) -> tuple[str, bool]:
    (loki,) = [s for s in selected if s.name == LOKI_FLOW.to]
    https = mode is TlsMode.REQUIRED and loki.tls is not None
    return f"{'https' if https else 'http'}://{loki.name}:{loki.port(LOKI_FLOW.port).container}", https


# Vector's `directory` secret backend (vectordotdev/vector: src/secrets/directory.rs; keys `path`,
# `remove_trailing_whitespace`) reads the files the entrypoint wrapper wrote: SECRET[devstack.<key>]
# in the config is the file's content, so no password is in the uploaded config.
SECRET_BACKEND = "devstack"
MONGODB_FLOW = Flow("mongodb", "mongodb")


def mongodb_endpoint(mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    """Vector's monitoring login to MongoDB (its own `vector` user in admin, clusterMonitor: the
    mongodb module's account step creates it), the password from the wrapper's file. Generated
    passwords are alphanumeric, so they need no escaping in the URI. Once TLS is required the
    driver verifies MongoDB against the CA (`tls`, `tlsCAFile` connection-string options)."""
    user, password = (f"SECRET[{SECRET_BACKEND}.mongodb_{key}]" for key in ("user", "password"))
    address = f"{MONGODB_FLOW.to}:27017"
    options = "authSource=admin"
    if mode is TlsMode.REQUIRED:
        options += f"&tls=true&tlsCAFile={tls_dir}/{CA_FILE}"
    return f"mongodb://{user}:{password}@{address}/?{options}"


def vector_config(service: Service, selected: Sequence[Service], mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    endpoint, https = _loki_endpoint(selected, mode)
    loki: dict = {
        "type": "loki",
        "inputs": ["container_logs", "alerts"],
        "endpoint": endpoint,
        "encoding": {"codec": "json"},
        "labels": {"service": "{{ service }}", "stream": "{{ stream }}"},
        "out_of_order_action": "accept",
    }
    if https:
        loki["tls"] = {"ca_file": f"{tls_dir}/{CA_FILE}", "verify_certificate": True, "verify_hostname": True}
    sources: dict = {
        "docker_files": {"type": "file", "include": [f"{DOCKER_LOGS}/*/*-json.log"]},
        "alertmanager": {
            "type": "http_server",
            "address": f"0.0.0.0:{service.port('alerts').container}",
            "path": INBOX_PATH,
            "decoding": {"codec": "json"},
        },
        "vector_metrics": {"type": "internal_metrics"},
    }
    metrics_inputs = ["vector_metrics"]
    config: dict = {"data_dir": "/var/lib/vector"}
    if any(s.name == MONGODB_FLOW.to for s in selected):
        # MongoDB's serverStatus as mongodb_* metrics (src/sources/mongodb_metrics: `up` is 1 when
        # the collection worked), through the same Prometheus endpoint as Vector's own.
        sources["mongodb_metrics"] = {"type": "mongodb_metrics", "endpoints": [mongodb_endpoint(mode, tls_dir)]}
        metrics_inputs.append("mongodb_metrics")
        config["secret"] = {
            SECRET_BACKEND: {"type": "directory", "path": SECRETS_DIR, "remove_trailing_whitespace": True}
        }
    config |= {
        "api": {"enabled": True, "address": f"0.0.0.0:{service.port('api').container}"},
        "sources": sources,
        "transforms": {
            "container_logs": {"type": "remap", "inputs": ["docker_files"], "source": _DOCKER_REMAP},
            "alerts": {"type": "remap", "inputs": ["alertmanager"], "source": _ALERTS_REMAP},
        },
        "sinks": {
            "loki": loki,
            "metrics": {
                "type": "prometheus_exporter",
                "inputs": metrics_inputs,
                "address": f"0.0.0.0:{service.port('metrics').container}",
            },
        },
    }
    return "# devstack: generated (devstack/services/vector.py); do not edit.\n" + yaml.dump(
        config, Dumper=_Dumper, sort_keys=False
    )


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    return (ConfigFile(VECTOR_CONFIG, vector_config(service, context.selected, context.settings.features.tls)),)


VECTOR = Service(
    name="vector",
    image="timberio/vector",
    tag="0.50.0-alpine",
    tier=Tier.OBSERVABILITY,
    host_id=60,
    ports=(Port("api", 8686), Port("metrics", 9598), Port("alerts", 9601)),
    # Container logs as read-only files, instead of the Docker socket (host root).
    binds=(HostBind("/var/lib/docker/containers", "/var/lib/docker/containers"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:8686/health")),
    limits=Limits(1, 128, weight=1),
    profiles=FULL,
    hardening=Hardening(
        user=None,
        root_reason=(
            "reads the engine's log files (root:root, 0640, under /var/lib/docker/containers): a "
            "non-root user would need DAC_READ_SEARCH, which Docker gives only to root processes"
        ),
    ),
    depends_on=("vault", "postgres", "mongodb", "loki"),
    flows=(
        VAULT_FLOW,
        LOKI_FLOW,
        Flow("postgres", "postgres"),
        MONGODB_FLOW,
        Flow("rabbitmq", "metrics"),
        Flow("cadvisor", "http"),
        *(Flow(exporter.name, "metrics") for exporter in EXPORTERS),
    ),
    client_role=ClientRole.MONITOR,
    # Vector's `directory` secret backend reads the wrapper's files.
    credentials=Credentials(entrypoint=("/usr/local/bin/vector",)),
    system_ca_bundle=True,
    alert_inbox="alerts",  # Alertmanager's webhook: each notification becomes a log line in Loki
    config_files=_config_files,
    # Its own counters (internal_metrics, namespace vector_), through the prometheus_exporter sink.
    # MongoDB's, from the mongodb_metrics source (namespace `mongodb`; vectordotdev/vector:
    # src/sources/mongodb_metrics/mod.rs, `up` and `connections` by state).
    metrics=Metrics(
        "metrics",
        exported=("vector_component_errors_total", "mongodb_up", "mongodb_connections"),
        dashboard="mongodb.json",
    ),
)
