"""The CrossGuard pack's config for a stack, and the pack's rules run over the offline plan.

python -m tools.policy config [--stack dev] [--set key=value ...] > policy-config.json
    pulumi preview --policy-pack policies/crossguard --policy-pack-config policy-config.json
python -m tools.policy check [--stack dev] [--set key=value ...] [--json]
    every rule over the offline plan; exit status 1 when any is violated
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from devstack import hardening
from devstack.catalog import SERVICES
from devstack.credentials import client_accounts, needs_secret
from devstack.settings import Settings, load_settings
from devstack.topology import client_tiers, selected_services
from policies.crossguard import validators
from policies.crossguard.validators import Resource, Violation
from tools.cli import run
from tools.engine import PlanRun, masked
from tools.plan import PlanError, plan_for


def hardening_enforced(settings: Settings) -> bool:
    return settings.features.hardening


def hardening_exceptions(settings: Settings) -> dict[str, dict[str, str]]:
    """The catalog's named exceptions to the hardening rule, for the services that run."""
    accounts = client_accounts(SERVICES)
    secrets = frozenset(s.name for s in SERVICES if s.credentials is not None and needs_secret(s, accounts))
    return hardening.exceptions(selected_services(settings), settings.features.tls, secrets)


def pack_config(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each policy's config, from the validated settings and the catalog (what the stack chose)."""
    selected = selected_services(settings)
    return {
        "ports-within-bind-address": {"bindAddress": settings.bind_address},
        "no-vault-root-token": {"approle": settings.features.approle},
        "strict-hardening": {
            "enforce": hardening_enforced(settings),
            "exceptions": hardening_exceptions(settings) if hardening_enforced(settings) else {},
        },
        validators.RULE_TIERS: {
            "segmentation": settings.features.segmentation,
            "tiers": {service.name: service.tier.value for service in SERVICES},
            "flows": sorted([client.name, flow.to] for client in SERVICES for flow in client.flows),
            # Vault joins every tier whose services talk to it, instead of link networks.
            "hubs": {
                hub.name: [tier.value for tier in client_tiers(hub, selected)]
                for hub in SERVICES
                if hub.joins_client_tiers
            },
        },
    }


def notes(settings: Settings) -> list[str]:
    """What the pack leaves unchecked for this config, and why."""
    lines = []
    if not settings.features.approle:
        lines.append("no-vault-root-token: not applied (approle off: containers read with the root token by design)")
    if not settings.features.segmentation:
        lines.append(f"{validators.RULE_TIERS}: not applied (segmentation off: one flat network by design)")
    if not hardening_enforced(settings):
        lines.append("strict-hardening: not applied (the hardening feature is off)")
    return lines


def plan_resources(run: PlanRun) -> list[Resource]:
    """The plan's resources as the pack sees them (secrets printed as validators.SECRET)."""
    return [
        Resource(
            type=record.type,
            name=record.name,
            inputs=masked(record.inputs),
            urn=record.urn,
            protect=bool(record.options.get("protect")),
            retain_on_delete=bool(record.options.get("retain_on_delete")),
        )
        for record in run.resources
        if record.custom
    ]


def check_run(run: PlanRun, config: dict[str, dict[str, Any]]) -> list[Violation]:
    return validators.check_all(plan_resources(run), config)


def settings_of(run: PlanRun) -> Settings:
    return load_settings(run.config, stack=run.stack)


def _arguments(prog: str, with_json: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml is read (default: dev)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    if with_json:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else ""
    if command not in ("config", "check"):
        print("usage: python -m tools.policy {config,check} [--stack S] [--set KEY=VALUE ...]", file=sys.stderr)
        return 2
    args = _arguments(f"python -m tools.policy {command}", command == "check").parse_args(argv[1:])
    try:
        run = plan_for(args.stack, args.overrides)
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = settings_of(run)
    config = pack_config(settings)
    if command == "config":
        print(json.dumps(config, indent=2, sort_keys=True))
        return 0
    violations = check_run(run, config)
    if args.json:
        found = [{"rule": v.rule, "resource": v.resource, "message": v.message} for v in violations]
        print(json.dumps({"violations": found, "notes": notes(settings)}, indent=2))
    else:
        for violation in violations:
            print(f"{violation.rule}: {violation.resource}: {violation.message}")
        for line in notes(settings):
            print(f"note: {line}")
        print(f"{len(violations)} violation(s) of {len(validators.RULE_NAMES)} rules")
    return 1 if violations else 0


if __name__ == "__main__":
    run(main)
