"""An alert delivered for real: Debian's Prometheus and Alertmanager run the plan's own
prometheus.yml, rule files and alertmanager.yml on 127.0.0.1; Vault's scrape target (a stand-in
serving its metrics path) is stopped, and the alert must reach the inbox (a webhook receiver in
the test, standing in for Vector's `alerts` source) within the rule's `for:` plus the group wait,
then resolve once the target is back.

What differs from the containers, and nothing else (MAPPED): every path under /etc/prometheus
moves into a scratch folder; each target and peer `name:port` becomes 127.0.0.1 and a free port
(Prometheus and Alertmanager their own, Vault the stand-in that goes down, every other target
one stand-in that stays up, so no other alert fires); the servers listen on 127.0.0.1, and
Alertmanager's cluster listener (gossip between replicas; the container has no peer) is off.
The intervals, rules, routes and waits are the shipped ones, so the test takes about 3 minutes.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from devstack.alerting import GROUP_INTERVAL, GROUP_WAIT
from devstack.monitoring import EVALUATION_INTERVAL, SCRAPE_INTERVAL
from tests.conftest import containers, make_plan
from tests.realservers import _find, _server_dir, _server_process, _wait_until, _write_owned, free_port

pytestmark = pytest.mark.real

PLAN = ("profiles=full", "phase=2")  # alerting on, TLS dual: Prometheus scrapes over HTTP
ALERT = "VaultSealedOrUnreachable"
MAPPED = {
    "paths": "/etc/prometheus/... and Alertmanager's storage live in a scratch folder",
    "targets": "every `name:port` target or peer is 127.0.0.1 and a port of the test",
    "listen": "both servers listen on 127.0.0.1; Alertmanager's cluster listener is off",
}


def seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]


@dataclass
class Inbox:
    """Alertmanager's webhook receiver: each notification with the time it arrived."""

    received: list[tuple[float, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrivals(self, alertname: str, status: str) -> list[float]:
        with self.lock:
            return [
                at
                for at, body in self.received
                if body.get("status") == status and body.get("commonLabels", {}).get("alertname") == alertname
            ]

    def alertnames(self) -> set[str]:
        with self.lock:
            return {a["labels"]["alertname"] for _, body in self.received for a in body.get("alerts", [])}


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class MetricsStandIn(_Quiet):
    """Any target that stays up: an empty metrics page on every path."""

    def do_GET(self) -> None:
        body = b"# a stand-in target\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def inbox_handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(_Quiet):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with inbox.lock:
                inbox.received.append((time.monotonic(), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def _uploads(container: str) -> dict[str, str]:
    run = make_plan(*PLAN)
    return {u["file"]: u["content"] for u in containers(run)[container]["uploads"] if isinstance(u["content"], str)}


def _map_targets(text: str, ports: dict[str, int]) -> str:
    """Each `- name:port` target line becomes 127.0.0.1 and the test's port for that name."""

    def replace(match: re.Match[str]) -> str:
        return f"{match[1]}127.0.0.1:{ports[match[2]]}"

    return re.sub(r"^(\s*- )([a-z0-9-]+):\d+$", replace, text, flags=re.M)


def _targets(config: dict) -> list[str]:
    jobs = [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]
    return [t for job in jobs for s in job["static_configs"] for t in s["targets"]]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        return _get_json(url)["data"]["result"]
    except OSError:
        return []


def _ready(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except OSError:
        return False


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")


def test_vault_down_reaches_the_inbox_and_resolves() -> None:
    try:
        prometheus_bin = _find("prometheus")
        alertmanager_bin = _find("prometheus-alertmanager")
    except RuntimeError:
        pytest.skip("prometheus or prometheus-alertmanager missing: apt-get install both (.ci/apt-packages)")
    prometheus_files = _uploads("dev-prometheus")
    alertmanager_yml = _uploads("dev-alertmanager")["/etc/alertmanager/alertmanager.yml"]
    config = yaml.safe_load(prometheus_files["/etc/prometheus/prometheus.yml"])
    rule = next(
        r
        for path, text in prometheus_files.items()
        if path.startswith("/etc/prometheus/rules/")
        for g in yaml.safe_load(text)["groups"]
        for r in g["rules"]
        if r.get("alert") == ALERT  # recording rules have none
    )
    wait = seconds(GROUP_WAIT[rule["labels"]["severity"]])
    cycle = seconds(SCRAPE_INTERVAL) + seconds(EVALUATION_INTERVAL)  # until a change is seen
    slack = 10.0  # process scheduling on a shared machine, and the webhook's own round trip

    inbox = Inbox()
    stand_in_port, vault_port = free_port(), free_port()
    prometheus_port, alertmanager_port = free_port(), free_port()
    with (
        _server_dir("devstack-alerts-") as root,
        serving(inbox_handler(inbox)) as inbox_server,
        serving(MetricsStandIn, stand_in_port),
    ):
        targets = {t.split(":")[0] for t in _targets(config)}
        ports = dict.fromkeys(targets, stand_in_port) | {
            "vault": vault_port,
            "prometheus": prometheus_port,
            "alertmanager": alertmanager_port,
        }
        (root / "etc" / "prometheus" / "rules").mkdir(parents=True)
        for path, text in prometheus_files.items():
            if path.startswith("/etc/prometheus/"):
                moved = text.replace("/etc/prometheus/", f"{root}/etc/prometheus/")
                _write_owned(root / path.lstrip("/"), _map_targets(moved, ports))
        inbox_url = f"http://127.0.0.1:{inbox_server.server_address[1]}/alerts"
        shipped_url = re.search(r"url: (http://\S+)", alertmanager_yml)[1]  # type: ignore[index]
        _write_owned(root / "alertmanager.yml", alertmanager_yml.replace(shipped_url, inbox_url))
        mapped = yaml.safe_load((root / "etc/prometheus/prometheus.yml").read_text())
        assert all(t.startswith("127.0.0.1:") for t in _targets(mapped))

        am_log, prom_log = root / "alertmanager.log", root / "prometheus.log"
        alertmanager_args = [
            alertmanager_bin,
            f"--config.file={root}/alertmanager.yml",
            f"--storage.path={root}/alertmanager",
            f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            "--cluster.listen-address=",
        ]
        prometheus_args = [
            prometheus_bin,
            f"--config.file={root}/etc/prometheus/prometheus.yml",
            f"--storage.tsdb.path={root}/prometheus",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        with (
            _server_process(alertmanager_args, am_log, 15) as alertmanager,
            _server_process(prometheus_args, prom_log, 15) as prometheus,
        ):
            _wait_until(lambda: _ready(alertmanager_port, "/-/ready"), alertmanager, am_log, "alertmanager")
            _wait_until(lambda: _ready(prometheus_port, "/-/ready"), prometheus, prom_log, "prometheus")
            vault_up = 'up{job="vault"} == 1'
            with serving(MetricsStandIn, vault_port):
                _wait_for(lambda: bool(_query(prometheus_port, vault_up)), 3 * cycle, "Vault's first scrape")
            down = time.monotonic()  # the stand-in is gone: connections to it are refused
            fired = _wait_for(
                lambda: bool(inbox.arrivals(ALERT, "firing")),
                seconds(rule["for"]) + wait + cycle + slack,
                f"{ALERT} in the inbox",
            )
            with serving(MetricsStandIn, vault_port):
                back = time.monotonic()
                resolved = _wait_for(
                    lambda: bool(inbox.arrivals(ALERT, "resolved")),
                    seconds(GROUP_INTERVAL) + cycle + slack,
                    f"{ALERT} resolved in the inbox",
                )
    time_to_alert, time_to_resolve = fired - down, resolved - back
    print(f"\n{ALERT}: in the inbox {time_to_alert:.1f}s after Vault went down, resolved {time_to_resolve:.1f}s after")
    assert time_to_alert >= seconds(rule["for"])  # never before the rule's `for:`
    assert inbox.alertnames() == {ALERT}  # nothing else fired on the shipped config
    (_, firing) = next((at, body) for at, body in inbox.received if body["status"] == "firing")
    assert firing["receiver"] == "critical"
    assert firing["commonLabels"]["service"] == "vault"
    assert firing["commonAnnotations"]["runbook"] == "docs/alerting.md#critical-alerts"


def _post_json(url: str, body: object) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def test_a_critical_alert_inhibits_the_warnings_of_its_service() -> None:
    """The shipped inhibition on a real Alertmanager: alerts posted to its API as Prometheus would."""
    try:
        alertmanager_bin = _find("prometheus-alertmanager")
    except RuntimeError:
        pytest.skip("prometheus-alertmanager missing: apt-get install prometheus-alertmanager (.ci/apt-packages)")
    alertmanager_yml = _uploads("dev-alertmanager")["/etc/alertmanager/alertmanager.yml"]
    port = free_port()
    with _server_dir("devstack-inhibit-") as root, serving(inbox_handler(Inbox())) as inbox_server:
        shipped_url = re.search(r"url: (http://\S+)", alertmanager_yml)[1]  # type: ignore[index]
        inbox_url = f"http://127.0.0.1:{inbox_server.server_address[1]}/alerts"
        _write_owned(root / "alertmanager.yml", alertmanager_yml.replace(shipped_url, inbox_url))
        args = [
            alertmanager_bin,
            f"--config.file={root}/alertmanager.yml",
            f"--storage.path={root}/data",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        log = root / "alertmanager.log"
        with _server_process(args, log, 15) as process:
            _wait_until(lambda: _ready(port, "/-/ready"), process, log, "alertmanager")
            alerts = [
                {"labels": {"alertname": "RedisDown", "service": "redis-exporter-1", "severity": "critical"}},
                {"labels": {"alertname": "RedisEvictingKeys", "service": "redis-exporter-1", "severity": "warning"}},
                {"labels": {"alertname": "RedisEvictingKeys", "service": "redis-exporter-2", "severity": "warning"}},
            ]
            _post_json(f"http://127.0.0.1:{port}/api/v2/alerts", alerts)

            def states() -> dict[tuple[str, str], str]:
                found = _get_json_list(f"http://127.0.0.1:{port}/api/v2/alerts")
                return {(a["labels"]["alertname"], a["labels"]["service"]): a["status"]["state"] for a in found}

            _wait_for(lambda: len(states()) == 3 and "unprocessed" not in states().values(), 30, "alerts processed")
            assert states() == {
                ("RedisDown", "redis-exporter-1"): "active",
                ("RedisEvictingKeys", "redis-exporter-1"): "suppressed",  # inhibited by the critical one
                ("RedisEvictingKeys", "redis-exporter-2"): "active",  # another service: not inhibited
            }


def _get_json_list(url: str) -> list[dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())
