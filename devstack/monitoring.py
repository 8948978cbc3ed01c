"""Prometheus's config, generated from the catalog: one scrape job per running service with a
`metrics` hook, over HTTPS verified by the platform's CA once TLS is required, and (with the
`alerting` feature) the reviewed alert rules of policies/alerts/ and the services that take
Prometheus's alerts.

Each job carries the label `service` (the catalog name), which Alertmanager's inhibition and
the escalation section match on. Keys are those of Prometheus v2.55.1's config
(prometheus/prometheus@v2.55.1:config/config.go), all of them known to Debian's 2.42 too, whose
promtool checks the file the plan ships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from devstack.errors import PolicyFileError
from devstack.model import ConfigFile, Service
from devstack.phases import TlsMode
from devstack.tls import CA_FILE, TLS_DIR

if TYPE_CHECKING:
    from devstack.settings import Settings

ALERTS_DIR = Path(__file__).resolve().parent.parent / "policies" / "alerts"
RULES_DIR = "/etc/prometheus/rules"  # in the Prometheus container
# Generated recording rules: each certificate's not-after from the plan's own certificates, the
# metric the reviewed certificate alerts read (no exporter sees the platform's certificates).
CERTIFICATE_RULES = "certificates-not-after.yml"
CERTIFICATE_METRIC = "devstack_certificate_not_after_seconds"
# ... and each AppRole identity's secret_id: it lives 30 days from the `pulumi up` that minted it,
# at the earliest the start of the current rotation period (devstack.clock.period).
APPROLE_RULES = "approle-not-after.yml"
APPROLE_METRIC = "devstack_approle_secret_id_not_after_seconds"
# The backup-age contract: `tools.backup` writes this gauge, {store="<service>"}, unix seconds of
# the last good backup, into node-exporter's textfile directory (devstack.services.node_exporter).
BACKUP_METRIC = "devstack_backup_last_success_timestamp_seconds"
SCRAPE_INTERVAL = "15s"
EVALUATION_INTERVAL = "15s"


@dataclass(frozen=True)
class RuleFile:
    name: str  # file name in policies/alerts/
    content: str
    groups: tuple[dict, ...]


def _line_of(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""


def _parse(content: str) -> object:
    """Through libyaml where PyYAML has it: the same safe constructors, so the same data, parsed
    several times faster (every plan reads these files). A file libyaml refuses is read again by
    the pure-Python parser, whose error names the line and the problem."""
    try:
        return yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return yaml.safe_load(content)


def load_rule_file(path: Path) -> RuleFile:
    """One reviewed rule file; a file that does not parse stops the plan with one line naming
    the file and line."""
    content = path.read_text()
    shown = f"policies/alerts/{path.name}"
    try:
        document = _parse(content)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise PolicyFileError(f"{shown}{_line_of(error)}: {problem}") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise PolicyFileError(f"{shown}:1: a rule file is a mapping with a list of `groups`")
    return RuleFile(path.name, content, tuple(groups))


def rule_files(directory: Path | None = None) -> tuple[RuleFile, ...]:
    """The reviewed rule files (policies/alerts/*.yml; their promtool tests sit in tests/)."""
    return tuple(load_rule_file(p) for p in sorted((directory or ALERTS_DIR).glob("*.yml")))


def scrape_scheme(target: Service, mode: TlsMode) -> str:
    """A target with a certificate serves its metrics over HTTPS once TLS is required."""
    return "https" if mode is TlsMode.REQUIRED and target.tls is not None else "http"


def scrape_job(target: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> dict:
    metrics = target.metrics
    assert metrics is not None
    port = target.port(metrics.port_in(mode)).container
    job: dict = {
        "job_name": target.name,
        "metrics_path": metrics.path,
        "scheme": scrape_scheme(target, mode),
    }
    if metrics.params:
        job["params"] = {key: [value] for key, value in metrics.params.items()}
    if job["scheme"] == "https":
        job["tls_config"] = {"ca_file": f"{tls_dir}/{CA_FILE}", "min_version": "TLS12"}
    job["static_configs"] = [{"targets": [f"{target.name}:{port}"], "labels": {"service": target.name}}]
    return job


def alert_receivers(selected: Sequence[Service]) -> tuple[Service, ...]:
    return tuple(s for s in selected if s.alerts_port is not None)


def prometheus_yml(settings: Settings, selected: Sequence[Service], tls_dir: str = TLS_DIR) -> str:
    mode = settings.features.tls
    config: dict = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
    }
    if settings.features.alerting:
        config["rule_files"] = [f"{RULES_DIR}/{rule.name}" for rule in rule_files()]
        if mode is not TlsMode.OFF:
            config["rule_files"].append(f"{RULES_DIR}/{CERTIFICATE_RULES}")
        if settings.features.approle:
            config["rule_files"].append(f"{RULES_DIR}/{APPROLE_RULES}")
        managers = []
        for receiver in alert_receivers(selected):
            assert receiver.alerts_port is not None
            manager: dict = {"scheme": scrape_scheme(receiver, mode)}
            if manager["scheme"] == "https":
                manager["tls_config"] = {"ca_file": f"{tls_dir}/{CA_FILE}", "min_version": "TLS12"}
            port = receiver.port(receiver.alerts_port).container
            manager["static_configs"] = [{"targets": [f"{receiver.name}:{port}"]}]
            managers.append(manager)
        if managers:
            config["alerting"] = {"alertmanagers": managers}
    config["scrape_configs"] = [scrape_job(s, mode, tls_dir) for s in selected if s.metrics is not None]
    header = "# devstack: generated from the catalog (devstack/monitoring.py); do not edit.\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def certificate_rules(not_after: Mapping[str, str]) -> str:
    """Recording rules: per service, its certificate's not-after (RFC 3339, as pulumi-tls gives
    it) as seconds since the epoch. A renewed certificate changes the file, and Prometheus with
    it, on the same `pulumi up`."""
    rules = [
        {
            "record": CERTIFICATE_METRIC,
            "expr": f"vector({int(datetime.fromisoformat(end.replace('Z', '+00:00')).timestamp())})",
            "labels": {"service": service},
        }
        for service, end in sorted(not_after.items())
    ]
    document = {"groups": [{"name": "certificates-not-after", "rules": rules}]}
    return "# devstack: generated from the plan's certificates (devstack/monitoring.py).\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def approle_rules(identities: Sequence[str], not_after: int) -> str:
    """Recording rules: the earliest moment each identity's current secret_id can expire."""
    rules = [
        {"record": APPROLE_METRIC, "expr": f"vector({not_after})", "labels": {"service": identity}}
        for identity in sorted(identities)
    ]
    document = {"groups": [{"name": "approle-not-after", "rules": rules}]}
    return "# devstack: generated from the rotation period (devstack/monitoring.py).\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def prometheus_files(settings: Settings, selected: Sequence[Service], config_path: str) -> tuple[ConfigFile, ...]:
    files = [ConfigFile(config_path, prometheus_yml(settings, selected))]
    if settings.features.alerting:
        files += [ConfigFile(f"{RULES_DIR}/{rule.name}", rule.content) for rule in rule_files()]
    return tuple(files)
