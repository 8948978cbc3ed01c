"""Prometheus's scrape jobs and alert rules, and Alertmanager's config, as the plan ships them.

Unit tests read the plan (mock engine); the `real` ones hand the plan's exact bytes to Debian's
promtool and amtool (paths moved under a scratch folder: the only change)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from components.identity import SECRET_ID_TTL
from devstack import clock, monitoring
from devstack.alerting import SEVERITIES
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.model import Service
from devstack.phases import TlsMode
from devstack.services.vault import VAULT, vault_listeners
from tests.conftest import PlanFactory, containers
from tools import plan as plan_cli
from tools.engine import PlanRun
from tools.policy import settings_of

ROOT = Path(__file__).resolve().parent.parent
ALL = "profiles=full,reference"
EXPORTERS_ON = "databaseExporters=true"  # every scraped service runs
PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"
ALERTMANAGER_YML = "/etc/alertmanager/alertmanager.yml"
# A port named like a metrics endpoint whose service is not scraped, and why. Nothing else may be.
NOT_SCRAPED: dict[str, str] = {}


def uploads(run: PlanRun, container: str) -> dict[str, str]:
    return {u["file"]: u["content"] for u in containers(run)[container].get("uploads", [])}


def shipped_prometheus(run: PlanRun) -> dict:
    return yaml.safe_load(uploads(run, "dev-prometheus")[PROMETHEUS_YML])


def jobs(run: PlanRun) -> dict[str, dict]:
    return {job["job_name"]: job for job in shipped_prometheus(run)["scrape_configs"]}


# --- scrape jobs ---------------------------------------------------------------------------------


def test_every_service_with_metrics_has_its_job(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, EXPORTERS_ON, "phase=2")
    expected = {s.name for s in SERVICES if s.metrics is not None}
    assert set(jobs(run)) == expected
    for name, job in jobs(run).items():
        service = SERVICES_BY_NAME[name]
        assert service.metrics is not None
        port = service.port(service.metrics.port).container
        assert job["static_configs"] == [{"targets": [f"{name}:{port}"], "labels": {"service": name}}]
        assert job["scheme"] == "http"


def _metrics_like(service: Service) -> list[str]:
    return [p.name for p in service.ports if "metrics" in p.name and "tls" not in p.name]


def unscraped(services: tuple[Service, ...]) -> list[str]:
    return [s.name for s in services if _metrics_like(s) and s.metrics is None and s.name not in NOT_SCRAPED]


def test_no_metrics_port_without_a_scrape_job() -> None:
    """Bad input: a service that names a port `metrics` but has no `metrics` hook is named here."""
    assert unscraped(SERVICES) == []


def test_the_metrics_port_check_names_an_offender() -> None:
    exporter = dataclasses.replace(SERVICES_BY_NAME["redis-exporter-1"], metrics=None)
    assert unscraped((*SERVICES, exporter)) == ["redis-exporter-1"]


def test_the_scraper_has_a_flow_to_every_target() -> None:
    """So segmentation puts Prometheus on a network with each target (proved for real by
    tests/test_segmentation_docker.py, which probes every declared flow)."""
    prometheus = SERVICES_BY_NAME["prometheus"]
    flows = {(f.to, f.port) for f in prometheus.flows}
    for service in SERVICES:
        if service.metrics is None or service is prometheus:
            continue
        for mode in TlsMode:
            assert (service.name, service.metrics.port_in(mode)) in flows, service.name


def test_tls_required_scrapes_over_https_verified_by_the_ca(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, EXPORTERS_ON, "phase=4")
    for name, job in jobs(run).items():
        service = SERVICES_BY_NAME[name]
        assert service.metrics is not None
        port = service.port(service.metrics.port_in(TlsMode.REQUIRED))
        assert TlsMode.REQUIRED in port.open_in, name
        assert job["static_configs"][0]["targets"] == [f"{name}:{port.container}"]
        if service.tls is None:  # cAdvisor, rust-api: no TLS at all
            assert job["scheme"] == "http", name
            continue
        assert job["scheme"] == "https", name
        assert job["tls_config"] == {"ca_file": "/devstack/tls/ca.crt", "min_version": "TLS12"}, name
    assert jobs(run)["reference-api"]["static_configs"][0]["targets"] == ["reference-api:8443"]
    assert jobs(run)["cadvisor"]["scheme"] == "http"


def test_vault_metrics_need_no_token(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, EXPORTERS_ON, "phase=2")
    vault = jobs(run)["vault"]
    assert vault["metrics_path"] == "/v1/sys/metrics"
    assert vault["params"] == {"format": ["prometheus"]}
    text = uploads(run, "dev-prometheus")[PROMETHEUS_YML]
    assert "authorization" not in text
    assert "bearer" not in text.lower()
    assert "token" not in text.lower()
    port = int(vault["static_configs"][0]["targets"][0].rsplit(":", 1)[1])
    hcl = uploads(run, "dev-vault")["/vault/config/vault.hcl"]
    assert hcl.count('listener "tcp"') == 2  # dual mode: HTTP and HTTPS
    assert hcl.count("unauthenticated_metrics_access = true") == 1  # the scraped listener only
    (scraped,) = [block for block in hcl.split('listener "tcp"')[1:] if "unauthenticated_metrics_access" in block]
    assert f'address = "0.0.0.0:{port}"' in scraped


@pytest.mark.parametrize("phase", [0, 1, 4])
def test_vault_metrics_are_open_on_the_scraped_listener_only(shared_plan: PlanFactory, phase: int) -> None:
    hcl = uploads(shared_plan(ALL, EXPORTERS_ON, f"phase={phase}"), "dev-vault")["/vault/config/vault.hcl"]
    blocks = hcl.split('listener "tcp"')[1:]
    assert len(blocks) == (2 if phase == 1 else 1)  # dual mode at phase 1: HTTP and HTTPS
    (scraped,) = [b for b in blocks if "unauthenticated_metrics_access = true" in b]
    assert 'address = "0.0.0.0:8200"' in scraped  # Vault's "api" port: Metrics("api", ...)
    assert VAULT.metrics is not None
    assert VAULT.metrics.port == "api"


def test_vault_listeners_open_the_metrics_port_named() -> None:
    hcl = vault_listeners(TlsMode.DUAL, 8200, 8300, metrics_port=8300)
    plain, tls = hcl.split('listener "tcp"')[1:]
    assert "unauthenticated_metrics_access" not in plain
    assert "unauthenticated_metrics_access = true" in tls


def test_alerting_feature_adds_rules_and_alertmanager(shared_plan: PlanFactory) -> None:
    before = shipped_prometheus(shared_plan(ALL, EXPORTERS_ON, "phase=1"))
    assert "rule_files" not in before
    assert "alerting" not in before
    run = shared_plan(ALL, EXPORTERS_ON, "phase=2")
    after = shipped_prometheus(run)
    names = sorted(p.name for p in monitoring.ALERTS_DIR.glob("*.yml"))
    generated = [f"/etc/prometheus/rules/{n}" for n in (monitoring.CERTIFICATE_RULES, monitoring.APPROLE_RULES)]
    assert after["rule_files"] == [f"/etc/prometheus/rules/{n}" for n in names] + generated
    files = uploads(run, "dev-prometheus")
    assert all(path in files for path in generated)
    for name in names:
        assert files[f"/etc/prometheus/rules/{name}"] == (monitoring.ALERTS_DIR / name).read_text()
    assert after["alerting"] == {
        "alertmanagers": [{"scheme": "http", "static_configs": [{"targets": ["alertmanager:9093"]}]}]
    }
    required = shipped_prometheus(shared_plan(ALL, EXPORTERS_ON, "phase=4"))["alerting"]["alertmanagers"][0]
    assert required["scheme"] == "https"
    assert required["tls_config"] == {"ca_file": "/devstack/tls/ca.crt", "min_version": "TLS12"}


def test_certificate_rules_carry_each_certificates_not_after(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, EXPORTERS_ON, "phase=2")
    ends = {
        r.name.removesuffix("-tls"): r.outputs["validityEndTime"]
        for r in run.by_type("tls:index/locallySignedCert:LocallySignedCert")
        if r.name.endswith("-tls")
    }
    text = uploads(run, "dev-prometheus")[f"/etc/prometheus/rules/{monitoring.CERTIFICATE_RULES}"]
    (group,) = yaml.safe_load(text)["groups"]
    recorded = {r["labels"]["service"]: r["expr"] for r in group["rules"]}
    assert {r["record"] for r in group["rules"]} == {monitoring.CERTIFICATE_METRIC}
    assert set(recorded) == set(ends)
    assert len(ends) > 10
    for service, end in ends.items():
        seconds = int(datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp())
        assert recorded[service] == f"vector({seconds})", service


def test_approle_rules_carry_the_earliest_secret_id_expiry(
    shared_plan: PlanFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pinned clock: the plan and clock.period below read the same period whenever this runs
    monkeypatch.setenv("DEVSTACK_NOW", "2026-11-26T12:00:00Z")
    run = shared_plan(ALL, EXPORTERS_ON, "phase=2")
    text = uploads(run, "dev-prometheus")[f"/etc/prometheus/rules/{monitoring.APPROLE_RULES}"]
    (group,) = yaml.safe_load(text)["groups"]
    identities = {r.name for r in run.by_type("vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId")}
    assert {r["labels"]["service"] for r in group["rules"]} == identities
    days = settings_of(run).secret_id_rotation_days
    start = clock.period(days) * days * clock.DAY_SECONDS  # when this period's secret_ids are minted, at the earliest
    assert {r["expr"] for r in group["rules"]} == {f"vector({start + SECRET_ID_TTL})"}
    assert {r["record"] for r in group["rules"]} == {monitoring.APPROLE_METRIC}
    phase0 = shared_plan(ALL, EXPORTERS_ON, "phase=0", "features=alerting=true")  # no AppRole: no rules about it
    assert f"/etc/prometheus/rules/{monitoring.APPROLE_RULES}" not in uploads(phase0, "dev-prometheus")
    assert not any(monitoring.APPROLE_RULES in f for f in shipped_prometheus(phase0)["rule_files"])


def test_no_certificate_rules_without_certificates(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, EXPORTERS_ON, "phase=0", "features=alerting=true")  # TLS off
    assert not any(monitoring.CERTIFICATE_RULES in f for f in shipped_prometheus(run)["rule_files"])
    assert f"/etc/prometheus/rules/{monitoring.CERTIFICATE_RULES}" not in uploads(run, "dev-prometheus")


# --- alert rules -------------------------------------------------------------------------------

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def rule_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    keywords, label matchers, ranges or strings."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in KEYWORDS:
            continue
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number (1e3)
        names.add(match.group())
    return names


def exported_metrics() -> dict[str, set[str]]:
    """Metric name -> the services that list it as exported."""
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        if service.metrics is not None:
            for name in service.metrics.exported:
                found.setdefault(name, set()).add(service.name)
    return found


def all_rules() -> list[tuple[str, dict]]:
    return [(f.name, rule) for f in monitoring.rule_files() for g in f.groups for rule in g["rules"]]


def unknown_metrics(rules: list[tuple[str, dict]]) -> list[str]:
    exported = exported_metrics()
    return [
        f"{file}: {rule['alert']} reads {name}, which no scraped service exports"
        for file, rule in rules
        for name in sorted(rule_metrics(rule["expr"]))
        if name not in exported
    ]


def test_rules_read_only_exported_metrics() -> None:
    assert unknown_metrics(all_rules()) == []


def test_a_rule_on_an_unknown_metric_is_named() -> None:
    # Debian's prometheus-pgbouncer-exporter's name for cl_waiting, which the image does not export.
    rule = {"alert": "PgbouncerClientsWaiting", "expr": "pgbouncer_waiting_clients > 0"}
    assert unknown_metrics([("pgbouncer.yml", rule)]) == [
        "pgbouncer.yml: PgbouncerClientsWaiting reads pgbouncer_waiting_clients, which no scraped service exports"
    ]


def test_the_metric_reader_sees_through_promql() -> None:
    expr = 'increase(a_total{x="y z"}[5m]) > 1e3 and on(service) (b / c > 0.9) unless d{e="f"} offset 5m'
    assert rule_metrics(expr) == {"a_total", "b", "c", "d"}


def _anchors(readme: str) -> set[str]:
    return {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in readme.splitlines()
        if line.startswith("#")
    }


def test_every_rule_has_severity_summary_and_a_runbook_in_the_alerting_doc() -> None:
    anchors = _anchors((ROOT / "docs" / "alerting.md").read_text())
    assert {"critical-alerts", "warning-alerts"} <= anchors
    names = [rule["alert"] for _, rule in all_rules()]
    assert len(names) == len(set(names))
    for _, rule in all_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/alerting.md", rule["alert"]
        assert anchor in anchors, rule["alert"]


def test_the_alerting_docs_table_lists_every_rule_with_its_severity() -> None:
    """docs/alerting.md's table (what each alert watches, written by hand) and the README's
    generated list name exactly the rules there are, each with its own severity."""
    page = (ROOT / "docs" / "alerting.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", page, re.MULTILINE)
    assert sorted(rows) == sorted((r["alert"], r["labels"]["severity"]) for _, r in all_rules())
    readme = (ROOT / "README.md").read_text()
    for _, rule in all_rules():
        severity = rule["labels"]["severity"]
        (line,) = [line for line in readme.splitlines() if line.startswith(f"| {severity} (")]
        assert f"`{rule['alert']}`" in line, rule["alert"]


def test_the_disk_rules_watch_node_exporters_own_volume() -> None:
    """Its volume is what node-exporter sees of Docker's disk (no host path is mounted)."""
    from devstack.services.node_exporter import NODE_EXPORTER, TEXTFILE_DIR

    disk = [r for _, r in all_rules() if "node_filesystem_avail_bytes" in r["expr"]]
    assert {r["alert"] for r in disk} == {"DiskNearlyFull", "DiskAlmostFull"}
    for rule in disk:
        assert set(re.findall(r'mountpoint="([^"]+)"', rule["expr"])) == {TEXTFILE_DIR}
    assert [v.path for v in NODE_EXPORTER.volumes] == [TEXTFILE_DIR]
    assert NODE_EXPORTER.binds == ()
    assert NODE_EXPORTER.user == "65534:65534"


def test_every_rule_file_has_its_promtool_tests() -> None:
    for rule_file in monitoring.rule_files():
        tests = monitoring.ALERTS_DIR / "tests" / rule_file.name.replace(".yml", ".test.yml")
        document = yaml.safe_load(tests.read_text())
        assert document["rule_files"] == [f"../{rule_file.name}"]
        tested = {case["alertname"] for t in document["tests"] for case in t["alert_rule_test"]}
        alerts = {r["alert"] for g in rule_file.groups for r in g["rules"]}
        assert tested == alerts, rule_file.name
        for alert in alerts:  # each fires somewhere and stays quiet somewhere
            cases = [c for t in document["tests"] for c in t["alert_rule_test"] if c["alertname"] == alert]
            assert any(c["exp_alerts"] for c in cases), alert
            assert any(not c["exp_alerts"] for c in cases), alert


def test_a_rule_file_that_does_not_parse_stops_the_plan_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for source in monitoring.ALERTS_DIR.glob("*.yml"):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "broken.yml").write_text("groups:\n  - name: x\n    rules:\n      - alert: [unclosed\n")
    monkeypatch.setattr(monitoring, "ALERTS_DIR", tmp_path)
    assert plan_cli.main(["--set", "profiles=full", "--set", "phase=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: policies/alerts/broken.yml:5: "), err


# --- Alertmanager ------------------------------------------------------------------------------


def test_alertmanager_routes_by_severity_and_critical_inhibits_warning(shared_plan: PlanFactory) -> None:
    config = yaml.safe_load(uploads(shared_plan(ALL, EXPORTERS_ON, "phase=2"), "dev-alertmanager")[ALERTMANAGER_YML])
    routes = {r["matchers"][0]: r["receiver"] for r in config["route"]["routes"]}
    assert routes == {'severity="critical"': "critical", 'severity="warning"': "warning"}
    assert config["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["service"]}
    ]
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {"critical": "http://vector:9601/alerts", "warning": "http://vector:9601/alerts"}
    assert ("vector", "alerts") in {(f.to, f.port) for f in SERVICES_BY_NAME["alertmanager"].flows}


# --- the tools' own checkers, on the plan's bytes ------------------------------------------------


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} missing: apt-get install {package} (listed in .ci/apt-packages)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def write_moved(files: Mapping[str, object], root: Path, prefixes: tuple[str, ...]) -> dict[str, Path]:
    """The plan's files under `root`; each container path under one of `prefixes` is moved, and
    the same paths inside the files are rewritten to match (the only change made)."""
    written = {}
    for path, content in files.items():
        if not isinstance(content, str):
            continue  # the private key, a secret: no checker here reads it
        moved = content
        for prefix in prefixes:
            moved = moved.replace(prefix, f"{root}{prefix}")
        target = Path(f"{root}{path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(moved)
        written[path] = target
    return written


@pytest.mark.real
@pytest.mark.parametrize("phase", ["phase=2", "phase=4"])
def test_promtool_checks_the_shipped_config(shared_plan: PlanFactory, tmp_path: Path, phase: str) -> None:
    promtool = _tool("promtool", "prometheus")
    files = uploads(shared_plan(ALL, EXPORTERS_ON, phase), "dev-prometheus")
    written = write_moved(files, tmp_path, ("/etc/prometheus", "/devstack/tls"))
    result = _run(promtool, "check", "config", str(written[PROMETHEUS_YML]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    # The check is real: a job named twice fails it.
    bad = tmp_path / "bad.yml"
    config = yaml.safe_load(written[PROMETHEUS_YML].read_text())
    config["scrape_configs"].append(config["scrape_configs"][0])
    bad.write_text(yaml.safe_dump(config))
    assert _run(promtool, "check", "config", str(bad)).returncode != 0


@pytest.mark.real
def test_promtool_checks_and_tests_the_rules() -> None:
    promtool = _tool("promtool", "prometheus")
    rules = sorted(str(p) for p in monitoring.ALERTS_DIR.glob("*.yml"))
    checked = _run(promtool, "check", "rules", *rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p) for p in (monitoring.ALERTS_DIR / "tests").glob("*.test.yml"))
    tested = _run(promtool, "test", "rules", *tests)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(tests)


OFF_BY_ONE = [
    ("redis.yml", "< 16384", "<= 16384"),
    ("redis.yml", "for: 1m", "for: 45s"),
    ("databases.yml", "> 0.8", ">= 0.8"),
    ("databases.yml", "for: 5m", "for: 4m45s"),
    ("databases.yml", "pg_up == 0\n        for: 1m", "pg_up == 0\n        for: 45s"),
    ("databases.yml", "mongodb_up == 0\n        for: 1m", "mongodb_up == 0\n        for: 45s"),
    ("node.yml", "> 26 * 3600", ">= 26 * 3600"),
    ("node.yml", "> 3 * 86400", ">= 3 * 86400"),
    ("node.yml", "< 0.10", "<= 0.10"),
    ("node.yml", "< 0.03", "<= 0.03"),
    ("platform.yml", "[15m]) > 2", "[15m]) > 1"),
    ("platform.yml", "vault_audit_log_response_failure[5m]) > 0", "vault_audit_log_response_failure[5m]) >= 0"),
]


@pytest.mark.real
@pytest.mark.parametrize(("name", "before", "after"), OFF_BY_ONE)
def test_promtool_rule_tests_catch_an_off_by_one(tmp_path: Path, name: str, before: str, after: str) -> None:
    """The rule tests fail when a threshold or a `for:` moves by one step."""
    promtool = _tool("promtool", "prometheus")
    shutil.copytree(monitoring.ALERTS_DIR, tmp_path / "alerts")
    rules = tmp_path / "alerts" / name
    original = rules.read_text()
    assert before in original, before
    rules.write_text(original.replace(before, after))
    tests = tmp_path / "alerts" / "tests" / name.replace(".yml", ".test.yml")
    result = _run(promtool, "test", "rules", str(tests))
    assert result.returncode != 0, (before, after)


@pytest.mark.real
def test_amtool_checks_the_shipped_config(shared_plan: PlanFactory, tmp_path: Path) -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    text = uploads(shared_plan(ALL, EXPORTERS_ON, "phase=2"), "dev-alertmanager")[ALERTMANAGER_YML]
    config.write_text(text)
    result = _run(amtool, "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    config.write_text(text.replace("receiver: critical", "receiver: nobody"))  # an unknown receiver
    assert _run(amtool, "check-config", str(config)).returncode != 0


# --- Grafana provisioning ----------------------------------------------------------------------

GRAFANA = "dev-grafana"


def shipped_dashboards(run: PlanRun) -> dict[str, dict]:
    files = uploads(run, GRAFANA)
    return {path: json.loads(text) for path, text in files.items() if path.startswith("/etc/grafana/dashboards/")}


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def unknown_in_dashboards(dashboards: dict[str, dict]) -> list[str]:
    exported = exported_metrics()
    return [
        f"{path}: reads {name}, which no scraped service exports"
        for path, dashboard in dashboards.items()
        for expr in dashboard_exprs(dashboard)
        for name in sorted(rule_metrics(expr))
        if name not in exported
    ]


def test_dashboards_are_json_with_unique_uids_on_exported_metrics(shared_plan: PlanFactory) -> None:
    dashboards = shipped_dashboards(shared_plan(ALL, EXPORTERS_ON, "phase=2"))
    assert set(dashboards) == {
        "/etc/grafana/dashboards/overview.json",
        "/etc/grafana/dashboards/redis.json",
        "/etc/grafana/dashboards/rabbitmq.json",
        "/etc/grafana/dashboards/postgres.json",
        "/etc/grafana/dashboards/mysql.json",
        "/etc/grafana/dashboards/pgbouncer.json",
        "/etc/grafana/dashboards/mongodb.json",
    }
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for dashboard in dashboards.values():
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids)), dashboard["uid"]
        assert dashboard_exprs(dashboard), dashboard["uid"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "devstack-prometheus", dashboard["uid"]
    assert unknown_in_dashboards(dashboards) == []


def test_a_dashboard_on_an_unknown_metric_is_named() -> None:
    dashboard = {"panels": [{"targets": [{"expr": "rate(mongodb_op_counters_total[5m])"}]}]}
    assert unknown_in_dashboards({"mongodb.json": dashboard}) == [
        "mongodb.json: reads mongodb_op_counters_total, which no scraped service exports"
    ]


def test_every_dashboard_file_is_valid_json_with_its_uid() -> None:
    from devstack.provisioning import DASHBOARDS_DIR

    names = {s.metrics.dashboard for s in SERVICES if s.metrics is not None and s.metrics.dashboard}
    assert names == {p.name for p in DASHBOARDS_DIR.glob("*.json")}  # no orphan, none missing
    for name in names:
        assert json.loads((DASHBOARDS_DIR / name).read_text())["uid"].startswith("devstack-")


def test_the_overview_shows_every_scraped_service(shared_plan: PlanFactory) -> None:
    overview = shipped_dashboards(shared_plan(ALL, EXPORTERS_ON, "phase=2"))["/etc/grafana/dashboards/overview.json"]
    (services_up, vault, certificates, secret_ids, backups) = dashboard_exprs(overview)
    assert backups == f"(time() - {monitoring.BACKUP_METRIC}) / 3600"
    assert certificates == f"({monitoring.CERTIFICATE_METRIC} - time()) / 86400"
    assert secret_ids == f"({monitoring.APPROLE_METRIC} - time()) / 86400"
    listed = set(re.search(r'service=~"([^"]+)"', services_up)[1].split("|"))  # type: ignore[index]
    assert listed == {s.name for s in SERVICES if s.metrics is not None}
    assert vault == 'up{job="vault"}'


@pytest.mark.parametrize(("phase", "scheme"), [("phase=2", "http"), ("phase=4", "https")])
def test_datasources_follow_tls(shared_plan: PlanFactory, phase: str, scheme: str) -> None:
    files = uploads(shared_plan(ALL, EXPORTERS_ON, phase), GRAFANA)
    sources = {
        s["name"]: s for s in yaml.safe_load(files["/etc/grafana/provisioning/datasources/devstack.yml"])["datasources"]
    }
    assert set(sources) == {"Prometheus", "Loki", "Alertmanager"}
    for name, port in (("Prometheus", 9090), ("Loki", 3100)):
        assert sources[name]["url"] == f"{scheme}://{name.lower()}:{port}"
        if scheme == "https":
            assert sources[name]["secureJsonData"] == {"tlsCACert": "$__file{/devstack/tls/ca.crt}"}
            assert sources[name]["jsonData"]["tlsAuthWithCACert"] is True
            assert "/devstack/tls/ca.crt" in files  # the file the CA is read from is uploaded
        else:
            assert "secureJsonData" not in sources[name]
    assert sources["Alertmanager"]["url"] == f"{scheme}://alertmanager:9093"
    assert sources["Alertmanager"]["jsonData"]["implementation"] == "prometheus"
    grafana_flows = {f.to for f in SERVICES_BY_NAME["grafana"].flows}
    assert {"prometheus", "loki", "alertmanager"} <= grafana_flows


@pytest.mark.real
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [("severity=critical", "critical"), ("severity=warning", "warning"), ("severity=info", "warning")],
)
def test_amtool_routes_each_severity(shared_plan: PlanFactory, tmp_path: Path, labels: str, receiver: str) -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(uploads(shared_plan(ALL, EXPORTERS_ON, "phase=2"), "dev-alertmanager")[ALERTMANAGER_YML])
    result = _run(amtool, "config", "routes", "test", f"--config.file={config}", "alertname=X", "service=s", labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]
