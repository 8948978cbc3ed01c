"""Phase 4's promise, read from the plan: every server that has a certificate refuses plaintext,
and every client of one is pointed at its TLS side with the CA. One check per server, so a new
TLS-capable service without one fails here."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.certificates import tls_services
from devstack.phases import TlsMode
from devstack.tls import TLS_DIR
from tests.conftest import PlanFactory, containers
from tools.engine import unwrap

ALL = "profiles=full,reference"
Inputs = dict


def _env(inputs: Inputs) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inputs.get("envs", []))


def _file(inputs: Inputs, path: str) -> str:
    (content,) = [unwrap(u["content"]) for u in inputs.get("uploads", []) if u["file"] == path]
    return content


def _lines(inputs: Inputs, path: str) -> set[str]:
    return {line.strip() for line in _file(inputs, path).splitlines()}


def _vault(inputs: Inputs) -> bool:
    hcl = _file(inputs, "/vault/config/vault.hcl")
    return "tls_disable" not in hcl and hcl.count('listener "tcp"') == 1


def _postgres(inputs: Inputs) -> bool:
    hba = _lines(inputs, f"{TLS_DIR}/pg_hba.conf")
    uses_hba = f"hba_file={TLS_DIR}/pg_hba.conf" in inputs["command"]
    network = [line for line in hba if line.startswith("host")]
    rejects = {"hostnossl all  all  0.0.0.0/0       reject", "hostnossl all  all  ::/0            reject"}
    return uses_hba and rejects <= set(network) and all(line.startswith(("hostssl", "hostnossl")) for line in network)


def _pgbouncer(inputs: Inputs) -> bool:
    return "client_tls_sslmode = require" in _lines(inputs, "/etc/pgbouncer/pgbouncer.ini")


def _mysql(inputs: Inputs) -> bool:
    return "--require-secure-transport=ON" in inputs["command"]


def _redis(inputs: Inputs) -> bool:
    conf = _lines(inputs, "/devstack/redis.conf")
    return "port 0" in conf and "tls-cluster yes" in conf and "tls-replication yes" in conf


def _rabbitmq(inputs: Inputs) -> bool:
    conf = _lines(inputs, "/etc/rabbitmq/conf.d/30-devstack-tls.conf")
    closed = {"listeners.tcp = none", "management.ssl.port = 15672", "prometheus.ssl.port = 15692"}
    return closed <= conf and not any(".tcp." in line for line in conf)


def _mongodb(inputs: Inputs) -> bool:
    command = inputs["command"]
    return command[command.index("--tlsMode") + 1] == "requireTLS"


def _api(inputs: Inputs) -> bool:
    # apps/*: TLS_MODE=required serves HTTPS alone (tests/test_reference_apps.py runs them)
    return _env(inputs)["TLS_MODE"] == "required"


def _forgejo(inputs: Inputs) -> bool:
    env = _env(inputs)
    return env["GITEA__server__PROTOCOL"] == "https" and env["GITEA__server__CERT_FILE"].startswith(TLS_DIR)


def _prometheus(inputs: Inputs) -> bool:
    flag = next(a for a in inputs["command"] if a.startswith("--web.config.file="))
    return "tls_server_config:" in _file(inputs, flag.split("=", 1)[1])


def _grafana(inputs: Inputs) -> bool:
    return _env(inputs)["GF_SERVER_PROTOCOL"] in ("https", "h2")


def _loki(inputs: Inputs) -> bool:
    return any(a.startswith("-server.http-tls-cert-path=") for a in inputs["command"])


def _exporter(inputs: Inputs) -> bool:
    return "REDIS_EXPORTER_TLS_SERVER_CERT_FILE" in _env(inputs)


REFUSES_PLAINTEXT: dict[str, Callable[[Inputs], bool]] = {
    "vault": _vault,
    "postgres": _postgres,
    "pgbouncer": _pgbouncer,
    "mysql": _mysql,
    "redis-1": _redis,
    "redis-2": _redis,
    "redis-3": _redis,
    "rabbitmq": _rabbitmq,
    "mongodb": _mongodb,
    "forgejo": _forgejo,
    "reference-api": _api,
    "api-first": _api,
    "golang-api": _api,
    "nodejs-api": _api,
    "prometheus": _prometheus,
    "alertmanager": _prometheus,  # the same --web.config.file
    "grafana": _grafana,
    "loki": _loki,
    "redis-exporter-1": _exporter,
    "redis-exporter-2": _exporter,
    "redis-exporter-3": _exporter,
    # the same --web.config.file as Prometheus's (exporter-toolkit)
    "node-exporter": _prometheus,
}


def test_every_tls_capable_service_has_a_check() -> None:
    capable = {s.name for s in tls_services(tuple(s for s in SERVICES_BY_NAME.values() if s.switch is None))}
    assert capable == set(REFUSES_PLAINTEXT)


def test_at_phase4_every_tls_capable_service_refuses_plaintext(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan(ALL, "phase=4"))
    for name, refuses in REFUSES_PLAINTEXT.items():
        assert refuses(planned[SERVICES_BY_NAME[name].container_name]), name


@pytest.mark.parametrize("phase", [0, 1])
def test_before_phase4_plaintext_is_still_served(shared_plan: PlanFactory, phase: int) -> None:
    planned = containers(shared_plan(ALL, f"phase={phase}"))
    for name, refuses in REFUSES_PLAINTEXT.items():
        if SERVICES_BY_NAME[name].feature is not None and SERVICES_BY_NAME[name].container_name not in planned:
            continue  # node-exporter comes with backups (phase 2)
        inputs = planned[SERVICES_BY_NAME[name].container_name]
        try:
            refused = refuses(inputs)
        except (KeyError, ValueError, StopIteration):
            refused = False  # the setting is not there at all
        assert not refused, (phase, name)


def test_phase4_clients_use_the_tls_side(shared_plan: PlanFactory) -> None:
    planned = containers(shared_plan(ALL, "phase=4"))
    exporter = planned["dev-redis-exporter-1"]
    env = _env(exporter)
    assert env["REDIS_ADDR"] == "rediss://redis-1:6380"
    assert env["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == f"{TLS_DIR}/ca.crt"
    # its password file is keyed by the address it dials
    template = json.loads(_file(exporter, "/devstack/templates/redis-passwords.json"))
    assert list(template) == ["rediss://redis-1:6380"]
    forgejo = _env(planned["dev-forgejo"])
    assert forgejo["GITEA__database__SSL_MODE"] == "verify-full"
    assert forgejo["PGSSLROOTCERT"] == f"{TLS_DIR}/ca.crt"
    api = _env(planned["dev-reference-api"])
    assert (api["REDIS_PORT"], api["RABBITMQ_PORT"], api["TLS_CA_FILE"]) == ("6380", "5671", f"{TLS_DIR}/ca.crt")


def test_rolling_back_to_phase0_restates_forgejos_plain_settings(shared_plan: PlanFactory) -> None:
    # Forgejo writes its GITEA__ variables into app.ini on its volume, where they stay: the
    # rollback target has to say http and no database TLS itself.
    env = _env(containers(shared_plan(ALL, "phase=0"))["dev-forgejo"])
    assert env["GITEA__server__PROTOCOL"] == "http"
    assert env["GITEA__database__SSL_MODE"] == "disable"


def test_plaintext_ports_close_once_tls_is_required(shared_plan: PlanFactory) -> None:
    def ports(phase: int) -> dict[str, set[int]]:
        planned = containers(shared_plan(ALL, f"phase={phase}"))
        return {name: {p["internal"] for p in inputs.get("ports", [])} for name, inputs in planned.items()}

    dual, required = ports(1), ports(4)
    for name, plain, tls in (
        ("dev-redis-1", 6379, 6380),
        ("dev-reference-api", 8000, 8443),
        ("dev-rabbitmq", 5672, 5671),
        ("dev-vault", 8300, 8200),  # the migration's HTTPS port goes; the API port speaks TLS
    ):
        assert {plain, tls} <= dual[name], name
        assert tls in required[name], name
        assert plain not in required[name], name
    assert 8000 in required["dev-rust-api"]  # no TLS in Rust's standard library: HTTP stays


def test_only_services_with_a_certificate_close_their_plaintext() -> None:
    for service in SERVICES_BY_NAME.values():
        if any(p.open_in != frozenset(TlsMode) for p in service.ports):
            assert service.name in {s.name for s in tls_services((service,))}, service.name
