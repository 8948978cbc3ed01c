"""Loki's and Vector's configs as the plan ships them. Debian packages neither server, so no
checker of their own runs here: each file is checked against a schema of the keys it may use
(read from the pinned versions' configuration references, named in their modules) and for the
wiring between them (inputs, ports, paths, labels)."""

from __future__ import annotations

import json

import pytest
import yaml

from devstack.alerting import INBOX_PATH, inbox_url
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.services.loki import LOKI_CONFIG, LOKI_DEFAULT_ARGS
from devstack.services.vector import SERVICE_LABEL, VECTOR_CONFIG
from tests.conftest import PlanFactory, containers
from tools.engine import PlanRun, unwrap

ALL = "profiles=full,reference"

# Loki 3.3.2: the sections and keys this config may use (docs/sources/shared/configuration.md).
LOKI_SCHEMA: dict[str, set[str]] = {
    "auth_enabled": set(),
    "server": {"http_listen_port", "grpc_listen_port"},
    "common": {"instance_addr", "path_prefix", "storage", "replication_factor", "ring"},
    "schema_config": {"configs"},
    "limits_config": {"retention_period"},
    "compactor": {"working_directory", "retention_enabled", "delete_request_store"},
    "analytics": {"reporting_enabled"},
}
# Vector 0.50: the component types this config may use, and the keys each takes here.
VECTOR_TYPES: dict[str, set[str]] = {
    "file": {"type", "include"},
    "http_server": {"type", "address", "path", "decoding"},
    "internal_metrics": {"type"},
    "remap": {"type", "inputs", "source"},
    "loki": {"type", "inputs", "endpoint", "encoding", "labels", "out_of_order_action", "tls"},
    "prometheus_exporter": {"type", "inputs", "address"},
    "mongodb_metrics": {"type", "endpoints"},
}
VECTOR_TOP = {"data_dir", "secret", "api", "sources", "transforms", "sinks"}
# Its secret backends (src/secrets/directory.rs at the pinned version).
VECTOR_SECRETS: dict[str, set[str]] = {"directory": {"type", "path", "remove_trailing_whitespace"}}


def _file(run: PlanRun, container: str, path: str) -> dict:
    uploads = {u["file"]: u["content"] for u in containers(run)[container]["uploads"]}
    return yaml.safe_load(uploads[path])


def loki_schema_errors(config: dict) -> list[str]:
    errors = [f"unknown section {key}" for key in config if key not in LOKI_SCHEMA]
    for section, keys in LOKI_SCHEMA.items():
        if keys and isinstance(config.get(section), dict):
            errors += [f"{section}: unknown key {key}" for key in config[section] if key not in keys]
    return errors


def vector_schema_errors(config: dict) -> list[str]:
    errors = [f"unknown key {key}" for key in config if key not in VECTOR_TOP]
    for name, backend in config.get("secret", {}).items():
        allowed = VECTOR_SECRETS.get(backend["type"], set())
        errors += [f"secret {name}: unknown key {key}" for key in backend if key not in allowed]
    names = set(config["sources"]) | set(config["transforms"])
    for kind in ("sources", "transforms", "sinks"):
        for name, component in config[kind].items():
            allowed = VECTOR_TYPES.get(component["type"])
            if allowed is None:
                errors.append(f"{name}: unknown type {component['type']}")
                continue
            errors += [f"{name}: unknown key {key}" for key in component if key not in allowed]
            errors += [f"{name}: no component {i}" for i in component.get("inputs", []) if i not in names]
            if kind != "sources" and not component.get("inputs"):
                errors.append(f"{name}: no inputs")
    return errors


@pytest.mark.parametrize("phase", ["phase=0", "phase=4"])
def test_loki_config_fits_its_schema_and_volume(shared_plan: PlanFactory, phase: str) -> None:
    config = _file(shared_plan(ALL, phase), "dev-loki", LOKI_CONFIG)
    assert loki_schema_errors(config) == []
    assert f"-config.file={LOKI_CONFIG}" in LOKI_DEFAULT_ARGS  # the file the image's CMD reads
    (volume,) = SERVICES_BY_NAME["loki"].volumes
    storage = config["common"]["storage"]["filesystem"]
    for path in (config["common"]["path_prefix"], *storage.values(), config["compactor"]["working_directory"]):
        assert path.startswith(volume.path), path  # everything on the protected volume
    assert config["schema_config"]["configs"][0]["object_store"] == "filesystem"
    assert config["limits_config"]["retention_period"] == "168h"
    assert config["compactor"]["retention_enabled"] is True  # retention is the compactor's job
    assert config["analytics"] == {"reporting_enabled": False}
    assert config["server"]["http_listen_port"] == SERVICES_BY_NAME["loki"].port("http").container


def test_the_loki_schema_check_names_a_misspelt_key() -> None:
    config = {"limits_config": {"retention_periode": "168h"}, "analytic": {}}
    assert loki_schema_errors(config) == ["unknown section analytic", "limits_config: unknown key retention_periode"]


@pytest.mark.parametrize(("phase", "scheme"), [("phase=2", "http"), ("phase=4", "https")])
def test_vector_ships_container_logs_and_alerts_to_loki(shared_plan: PlanFactory, phase: str, scheme: str) -> None:
    run = shared_plan(ALL, phase)
    config = _file(run, "dev-vector", VECTOR_CONFIG)
    assert vector_schema_errors(config) == []
    vector, loki = SERVICES_BY_NAME["vector"], SERVICES_BY_NAME["loki"]
    sink = config["sinks"]["loki"]
    assert sink["endpoint"] == f"{scheme}://loki:{loki.port('http').container}"
    assert sink["labels"]["service"] == "{{ service }}"
    assert set(sink["inputs"]) == {"container_logs", "alerts"}
    if scheme == "https":
        assert sink["tls"]["ca_file"] == "/devstack/tls/ca.crt"
        assert "/devstack/tls/ca.crt" in {u["file"] for u in containers(run)["dev-vector"]["uploads"]}
    # The logs: the files of the read-only bind, the service from each line's label attribute.
    (bind,) = vector.binds
    assert config["sources"]["docker_files"]["include"] == [f"{bind.path}/*/*-json.log"]
    assert f'.service = parsed.attrs."{SERVICE_LABEL}"' in config["transforms"]["container_logs"]["source"]
    for inputs in containers(run).values():
        assert inputs["logOpts"]["labels"] == SERVICE_LABEL
        assert {"label": SERVICE_LABEL, "value": inputs["name"].removeprefix("dev-")} in inputs["labels"]
    # The alert inbox is where Alertmanager posts, and Vector's own metrics where Prometheus scrapes.
    inbox = config["sources"]["alertmanager"]
    assert inbox["address"] == f"0.0.0.0:{vector.port('alerts').container}"
    assert inbox_url(SERVICES) == f"http://vector:{vector.port('alerts').container}{inbox['path']}"
    assert inbox["path"] == INBOX_PATH
    assert config["sinks"]["metrics"]["address"] == f"0.0.0.0:{vector.port('metrics').container}"
    assert config["api"]["address"] == f"0.0.0.0:{vector.port('api').container}"  # its health probe


def test_the_vector_check_names_a_dangling_input() -> None:
    config = {
        "sources": {"a": {"type": "file", "include": []}},
        "transforms": {"b": {"type": "remap", "inputs": ["nope"], "source": ""}},
        "sinks": {"c": {"type": "console", "inputs": ["b"]}},
    }
    assert vector_schema_errors(config) == ["b: no component nope", "c: unknown type console"]


@pytest.mark.parametrize(("phase", "tls"), [("phase=2", False), ("phase=4", True)])
def test_vector_reads_mongodb_with_its_own_password_file(shared_plan: PlanFactory, phase: str, tls: bool) -> None:
    """MongoDB's metrics: Vector's monitoring login, its password a SECRET[] reference to the
    file the wrapper writes (the uploaded config holds none), verified by the CA once required."""
    run = shared_plan(ALL, phase)
    config = _file(run, "dev-vector", VECTOR_CONFIG)
    assert vector_schema_errors(config) == []
    assert config["secret"] == {
        "devstack": {"type": "directory", "path": "/run/devstack", "remove_trailing_whitespace": True}
    }
    (endpoint,) = config["sources"]["mongodb_metrics"]["endpoints"]
    user_pass = "SECRET[devstack.mongodb_user]:SECRET[devstack.mongodb_password]"
    options = "authSource=admin" + ("&tls=true&tlsCAFile=/devstack/tls/ca.crt" if tls else "")
    assert endpoint == f"mongodb://{user_pass}@mongodb:27017/?{options}"
    assert "mongodb_metrics" in config["sinks"]["metrics"]["inputs"]
    env = dict(e.split("=", 1) for e in containers(run)["dev-vector"]["envs"])
    assert env["DEVSTACK_SECRETS_DIR"] == "/run/devstack"
    (secret,) = [r for r in run.by_type("vault:kv/secretV2:SecretV2") if r.inputs["name"] == "vector"]
    assert {"mongodb_user", "mongodb_password"} <= set(json.loads(unwrap(secret.inputs["dataJson"])))


def test_vector_reads_no_mongodb_without_it() -> None:
    from devstack.phases import TlsMode
    from devstack.services.vector import vector_config

    vector, loki = SERVICES_BY_NAME["vector"], SERVICES_BY_NAME["loki"]
    config = yaml.safe_load(vector_config(vector, (vector, loki), TlsMode.OFF))
    assert "mongodb_metrics" not in config["sources"]
    assert "secret" not in config
    assert config["sinks"]["metrics"]["inputs"] == ["vector_metrics"]
