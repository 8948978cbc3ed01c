"""The generated parts of the documentation, so the docs cannot disagree with the code.

    python -m tools.docs config     # the configuration reference, from Pulumi.yaml's config schema
    python -m tools.docs services   # what runs: each service, its host ports, its credentials, profiles
    python -m tools.docs alerts     # the alert rules by severity, from policies/alerts/
    python -m tools.docs check      # every generated block in README.md and docs/*.md is current
    python -m tools.docs write      # rewrite the generated blocks that are not

A generated block in a Markdown file sits between `<!-- generated: COMMAND -->` and
`<!-- end generated -->`, where COMMAND is a `python -m tools.docs ...` or `python -m tools.plan
...` command whose output is the block; `check` runs each command and compares.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack.alerting import SEVERITIES
from devstack.catalog import SERVICES
from devstack.credentials import client_accounts, secret_keys
from devstack.errors import PolicyFileError
from devstack.model import Port, Profile, Service
from devstack.monitoring import rule_files
from devstack.phases import PHASE_FEATURES, TlsMode
from devstack.services.vault import VAULT
from devstack.settings import load_settings
from devstack.topology import published_ports
from tools.cli import run
from tools.engine import PROJECT_DIR

BLOCK = re.compile(r"(<!-- generated: (.+?) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)
# Port names that speak HTTP(S), shown as a URL rather than a bare port.
WEB_PORTS = frozenset({"api", "http", "https", "management", "management-tls"})
TLS_PORT_NAMES = frozenset({"https", "management-tls"})
EN_DASH = "\u2013"  # a range of phases, as the docs write it


class DocsError(Exception):
    """Printed as one line, exit status 2."""


def anchor(heading: str) -> str:
    """The anchor GitHub and Forgejo give a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# --- the configuration reference --------------------------------------------------------------


def _default(spec: dict[str, object]) -> str:
    value = spec.get("default")
    if value is None or value == "":
        return "(none)"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def config_reference(project_dir: Path = PROJECT_DIR) -> str:
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, spec in project["config"].items():
        description = str(spec.get("description", "")).replace("|", "\\|")
        lines.append(f"| [`{key}`](#{anchor(key)}) | {spec['type']} | {_default(spec)} | {description} |")
    return "\n".join(lines)


# --- what runs --------------------------------------------------------------------------------


def _phases(modes: frozenset[TlsMode]) -> str:
    """The phases in which the TLS mode is one of these, from the phase table."""
    phases = [p for p, features in sorted(PHASE_FEATURES.items()) if features.tls in modes]
    if len(phases) == len(PHASE_FEATURES):
        return ""
    if len(phases) == 1:
        return f"phase {phases[0]}"
    return f"phases {phases[0]}{EN_DASH}{phases[-1]}"


@dataclass(frozen=True)
class _Published:
    port: Port
    host: int
    modes: frozenset[TlsMode]


def _scheme(service: Service, port: Port, mode: TlsMode) -> str:
    if port.name in TLS_PORT_NAMES or (service.tls is not None and mode is TlsMode.REQUIRED):
        return "https"
    return "http"


def _port_cell(service: Service, published: _Published, bind: str) -> str:
    where = _phases(published.modes)
    if published.port.name not in WEB_PORTS:
        text = f"`{published.host}` ({published.port.name})"
        return f"{text}, {where}" if where else text
    modes = sorted(published.modes, key=list(TlsMode).index)
    schemes = {mode: _scheme(service, published.port, mode) for mode in modes}
    first = schemes[modes[0]]
    text = f"<{first}://{bind}:{published.host}>"
    later = [m for m in modes if schemes[m] != first]
    if later:
        text += f" (`{schemes[later[0]]}://` {_phases(frozenset(later))})"
    return f"{text}, {where}" if where else text


def _credentials_cell(service: Service, keys: tuple[str, ...], systems: tuple[str, ...]) -> str:
    if service is VAULT:
        return (
            "root token: the recovery file `~/.config/devstack/<stack>/vault-init.json`"
            " (before phase 4 also `pulumi stack output vaultRootToken --show-secrets`)"
        )
    if not keys:
        return "none"
    own = [k for k in keys if not any(k in (f"{s}_user", f"{s}_password") for s in systems)]
    text = f"`secret/{service.name}`"
    if own:
        text += ": " + ", ".join(own)
    if systems:
        text += f"{';' if own else ':'} own accounts on " + ", ".join(systems)
    return text


def _profiles_cell(service: Service) -> str:
    text = ", ".join(p.value for p in Profile if p in service.profiles) if service.profiles else "always"
    return f"{text} (with `{service.switch}=true`)" if service.switch else text


def services_table() -> str:
    base = {"devstack:profiles": "full,reference", "devstack:redisReplicas": "true"}
    by_mode = {}
    for mode in TlsMode:
        phase = min(p for p, features in PHASE_FEATURES.items() if features.tls is mode)
        by_mode[mode] = load_settings({**base, "devstack:phase": str(phase)}, stack="dev")
    bind = by_mode[TlsMode.OFF].bind_address
    accounts = client_accounts(SERVICES)
    lines = ["| Service | Container | On the host | Credentials | Profiles |", "|---|---|---|---|---|"]
    for service in SERVICES:
        found: dict[str, _Published] = {}
        for mode, settings in by_mode.items():
            for port in published_ports(settings, service):
                seen = found.get(port.name)
                modes = (seen.modes if seen else frozenset()) | {mode}
                found[port.name] = _Published(service.port(port.name), port.host, modes)
        ports = "<br>".join(_port_cell(service, p, bind) for p in found.values()) or "not published"
        systems = tuple(dict.fromkeys(a.system for a in accounts if a.client == service.name))
        credentials = _credentials_cell(service, secret_keys(service, accounts), systems)
        row = (service.name, f"`{service.container_name}`", ports, credentials, _profiles_cell(service))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def alerts_table() -> str:
    """Each severity with its alerts, in the reviewed files' order, linked to its escalation."""
    names: dict[str, list[str]] = {severity: [] for severity in SEVERITIES}
    for rules in rule_files():
        for group in rules.groups:
            for rule in group.get("rules", ()):
                if "alert" in rule:
                    names[rule["labels"]["severity"]].append(f"`{rule['alert']}`")
    lines = ["| Severity | What to do | Alerts |", "|---|---|---|"]
    for severity, alerts in names.items():
        escalation = f"[{severity} alerts](docs/alerting.md#{severity}-alerts)"
        lines.append(f"| {severity} ({len(alerts)}) | {escalation} | {', '.join(alerts)} |")
    return "\n".join(lines)


# --- the generated blocks -----------------------------------------------------------------------


def _docs_command(argv: Sequence[str]) -> str:
    generators: dict[str, Callable[[], str]] = {
        "config": config_reference,
        "services": services_table,
        "alerts": alerts_table,
    }
    if len(argv) != 1 or argv[0] not in generators:
        raise DocsError(f"no generated text 'tools.docs {' '.join(argv)}'; one of: {', '.join(generators)}")
    return generators[argv[0]]()


def output_of(command: str) -> str:
    """What a block's command prints (run in this process, as `python -m` would)."""
    argv = shlex.split(command)
    if argv[:2] != ["python", "-m"] or len(argv) < 4:
        raise DocsError(f"not a generating command: {command}")
    module, args = argv[2], argv[3:]
    if module == "tools.docs":
        return _docs_command(args)
    if module == "tools.plan":
        from tools.plan import COMMANDS

        if args[0] in COMMANDS:
            return COMMANDS[args[0]](args[1:])
    raise DocsError(f"not a generating command: {command}")


def documents(project_dir: Path = PROJECT_DIR) -> list[Path]:
    return [project_dir / "README.md", *sorted((project_dir / "docs").glob("*.md"))]


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: f"{m[1]}{output_of(m[2])}\n{m[4]}", text)


def stale(project_dir: Path = PROJECT_DIR) -> list[Path]:
    return [path for path in documents(project_dir) if regenerate(text := path.read_text()) != text]


def check(project_dir: Path = PROJECT_DIR) -> int:
    paths = stale(project_dir)
    for path in paths:
        print(f"{path.relative_to(project_dir)}: generated text is out of date; run python -m tools.docs write")
    return 1 if paths else 0


def write(project_dir: Path = PROJECT_DIR) -> int:
    for path in stale(project_dir):
        path.write_text(regenerate(path.read_text()))
        print(f"rewrote {path.relative_to(project_dir)}")
    return 0


def main(argv: Sequence[str] | None = None, project_dir: Path = PROJECT_DIR) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.docs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("config", "services", "alerts", "check", "write"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "check":
            return check(project_dir)
        if args.command == "write":
            return write(project_dir)
        print(_docs_command([args.command]))
    except (DocsError, PolicyFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run(main)
