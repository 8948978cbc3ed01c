"""Offline plan: what `pulumi up` would create, without Docker, Vault or the Pulumi CLI.

python -m tools.plan [--stack dev] [--set key=value ...] [--json]
python -m tools.plan diff --from phase=0 --to phase=1 [--set key=value ...] [--json]
python -m tools.plan diff --to-time 2027-03-01T00:00:00Z      # the same config, a later `pulumi up`
python -m tools.plan diff --from-file base.yaml                # another version of Pulumi.<stack>.yaml first
python -m tools.plan access [--set key=value ...] [--json]    # Vault identities and what they read
python -m tools.plan certs [--set key=value ...] [--json]     # the certificate inventory
python -m tools.plan budget [--set key=value ...] [--json]    # memory limits and derived caches
python -m tools.plan graph [--set key=value ...] [--markdown] # the topology as a Mermaid flowchart
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi

from components.identity import policy_document
from devstack import clock
from devstack.errors import ConfigError, PolicyFileError
from devstack.settings import exposure_warning, load_settings
from tools.access import (
    PROVISIONER,
    access_matrix,
    matrix_json,
    provisioner_access,
    provisioner_json,
    render_matrix,
    render_provisioner,
)
from tools.budget import budget_json, budget_table, render_budget
from tools.certs import inventory, inventory_json, render_inventory
from tools.cli import run
from tools.diff import PlanDiff, diff_plans
from tools.engine import PlanRun, ResourceRecord, masked, run_program
from tools.graph import mermaid, topology
from tools.stackconfig import OverrideError, apply_overrides, load_stack_config, load_stack_file, refuse_encrypted

SCHEMA = "devstack-plan/1"
SECRET_CONFIG_MARK = "[secret]"


class PlanError(Exception):
    """A user error: printed as one line, exit status 2."""


def _base_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml is read (default: dev)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set phase=1 --set profiles=full,reference",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def plan_for(stack: str, overrides: Sequence[str], state: Any = None, stack_file: Path | None = None) -> PlanRun:
    try:
        stacked = load_stack_config(stack) if stack_file is None else load_stack_file(stack_file, stack)
        config = apply_overrides(stacked, overrides)
        refuse_encrypted(config, stack)
        run = run_program(config, stack=stack, state=state)
        _warn_once(exposure_warning(load_settings(config, stack=stack)))
        return run
    except (ConfigError, OverrideError, PolicyFileError) as error:
        raise PlanError(str(error)) from None
    except pulumi.RunError as error:
        raise PlanError(str(error)) from None


_WARNED: set[str] = set()


def _warn_once(warning: str | None) -> None:
    """On stderr, so --json output stays one JSON document; once per command (diff plans twice)."""
    if warning and warning not in _WARNED:
        _WARNED.add(warning)
        print(warning, file=sys.stderr)


def _masked_config(config: dict[str, str]) -> dict[str, str]:
    from tools.stackconfig import SECURE_PLACEHOLDER

    return {k: SECRET_CONFIG_MARK if v == SECURE_PLACEHOLDER else v for k, v in sorted(config.items())}


def resource_json(record: ResourceRecord) -> dict[str, Any]:
    return {
        "urn": record.urn,
        "type": record.type,
        "name": record.name,
        "parent": record.parent,
        "custom": record.custom,
        "provider": record.provider,
        "dependencies": record.dependencies,
        "property_dependencies": record.property_dependencies,
        "inputs": masked(record.inputs),
        "outputs": masked(record.outputs),
        "options": {
            k: record.options[k]
            for k in (
                "protect",
                "retain_on_delete",
                "delete_before_replace",
                "ignore_changes",
                "aliases",
                "additional_secret_outputs",
            )
        },
    }


def plan_json(run: PlanRun) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "project": run.project,
        "stack": run.stack,
        "config": _masked_config(run.config),
        "resources": [resource_json(r) for r in run.resources],
        "outputs": masked(run.outputs),
    }


def _tree_lines(run: PlanRun, mark: Callable[[ResourceRecord], str]) -> list[str]:
    children: dict[str, list[ResourceRecord]] = {}
    for record in run.resources:
        children.setdefault(record.parent, []).append(record)
    rows: list[tuple[str, str, str]] = []

    def walk(record: ResourceRecord, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        rows.append((mark(record), f"{prefix}{branch}{record.type}", record.name))
        kids = children.get(record.urn, [])
        extension = "" if top else ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, prefix + extension, i == len(kids) - 1, False)

    for root in children.get("", []):
        walk(root, "", True, True)
    width = max(len(r[1]) for r in rows) + 2
    lines = [f"     {'Type':<{width}}Name"]
    lines += [f" {m:<3} {t:<{width}}{n}" for m, t, n in rows]
    return lines


def render_tree(run: PlanRun) -> str:
    lines = [f"Previewing devstack/{run.stack} offline (mock engine; nothing is created)", ""]
    lines += _tree_lines(run, lambda _r: "+")
    lines += ["", "Outputs:"]
    for name, value in masked(run.outputs).items():
        lines.append(f"    {name}: {json.dumps(value, sort_keys=True)}")
    lines += ["", "Resources:", f"    + {len(run.resources)} to create"]
    return "\n".join(lines)


def diff_json(diff: PlanDiff) -> dict[str, Any]:
    return {
        "schema": "devstack-plan-diff/1",
        "summary": diff.summary(),
        "changes": [
            {
                "action": c.action,
                "urn": c.urn,
                "type": c.type,
                "name": c.name,
                "properties": list(c.properties),
                "old_urn": c.old_urn,
                "state_only": c.state_only,
            }
            for c in diff.changes
        ],
    }


def render_diff(diff: PlanDiff) -> str:
    symbols = {"create": "+", "delete": "-", "replace": "+-", "update": "~"}
    lines = []
    for change in diff.changes:
        detail = f" [{', '.join(change.properties)}]" if change.properties else ""
        moved = f" (was {change.old_urn})" if change.old_urn else ""
        recorded = " (recorded in state only: the running resource keeps the old value)" if change.state_only else ""
        lines.append(f" {symbols[change.action]:<3}{change.type} {change.name}{detail}{moved}{recorded}")
    summary = diff.summary()
    lines += ["", "Resources: " + ", ".join(f"{n} to {a}" for a, n in summary.items() if n) or "no changes"]
    if not diff.changes:
        lines = ["Resources: no changes"]
    return "\n".join(lines)


def _show(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _base_arguments(parser)
    args = parser.parse_args(argv)
    run = plan_for(args.stack, args.overrides)
    return json.dumps(plan_json(run), indent=2) if args.json else render_tree(run)


def _diff(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan diff", description="What `pulumi up` would change between two configs."
    )
    _base_arguments(parser)
    parser.add_argument(
        "--from",
        dest="before",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config of the current state (on top of the stack and --set)",
    )
    parser.add_argument("--to", dest="after", action="append", default=[], metavar="KEY=VALUE", help="config to apply")
    parser.add_argument(
        "--from-file",
        type=Path,
        metavar="PATH",
        help="the current state's stack file, e.g. the base branch's Pulumi.<stack>.yaml (default: the stack's own)",
    )
    parser.add_argument(
        "--to-time",
        metavar="ISO-TIME",
        help="when the later `pulumi up` runs (default: DEVSTACK_NOW or now, as for the current state): "
        "shows the secret_id rotations and certificate renewals due by then",
    )
    args = parser.parse_args(argv)
    before = plan_for(args.stack, [*args.overrides, *args.before], stack_file=args.from_file)
    with _clock_at(args.to_time):
        after = plan_for(args.stack, [*args.overrides, *args.after], state=before.state)
    diff = diff_plans(before, after)
    return json.dumps(diff_json(diff), indent=2) if args.json else render_diff(diff)


@contextmanager
def _clock_at(moment: str | None) -> Iterator[None]:
    """DEVSTACK_NOW set to `moment` for one plan (devstack.clock reads it, and refuses a bad one)."""
    if moment is None:
        yield
        return
    saved = os.environ.get("DEVSTACK_NOW")
    os.environ["DEVSTACK_NOW"] = moment
    try:
        clock.now()
    except ConfigError as error:
        _restore(saved)
        raise PlanError(f"--to-time: {error.message}") from None
    try:
        yield
    finally:
        _restore(saved)


def _restore(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("DEVSTACK_NOW", None)
    else:
        os.environ["DEVSTACK_NOW"] = saved


def _access(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan access",
        description="The access matrix: each Vault identity, the secret paths it can read, and any grant "
        "outside its own path, from the plan's policy documents (parsed as HCL, Vault's matching rules).",
    )
    _base_arguments(parser)
    args = parser.parse_args(argv)
    run = plan_for(args.stack, args.overrides)
    matrix = access_matrix(run)
    settings = load_settings(apply_overrides(load_stack_config(args.stack), args.overrides), stack=args.stack)
    # At strict the Vault provider logs in as the provisioner: its policy against the plan.
    provisioner = provisioner_access(run, policy_document(PROVISIONER)) if settings.features.strict else None
    if args.json:
        document = matrix_json(matrix)
        if provisioner is not None:
            document[PROVISIONER] = provisioner_json(provisioner)
        return json.dumps(document, indent=2)
    return render_matrix(matrix) + (render_provisioner(provisioner) if provisioner is not None else "")


def _certs(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan certs",
        description="The certificate inventory: subject, SANs, issuer, key type, not-after and renewal date.",
    )
    _base_arguments(parser)
    args = parser.parse_args(argv)
    entries = inventory(plan_for(args.stack, args.overrides))
    return json.dumps(inventory_json(entries), indent=2) if args.json else render_inventory(entries)


def _budget(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan budget",
        description="The memory budget: each container's limit and reservation, and the cache sizes derived from it.",
    )
    _base_arguments(parser)
    args = parser.parse_args(argv)
    run = plan_for(args.stack, args.overrides)
    config = apply_overrides(load_stack_config(args.stack), args.overrides)
    table = budget_table(run, load_settings(config, stack=args.stack))
    return json.dumps(budget_json(table), indent=2) if args.json else render_budget(table)


def _graph(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plan graph",
        description="The topology as a Mermaid flowchart: networks and subnets, each container's addresses, "
        "the link networks, the containers in several tiers (Vault) and the ports published on the host.",
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml is read (default: dev)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--markdown", action="store_true", help="inside a ```mermaid fence, for a Markdown page")
    args = parser.parse_args(argv)
    chart = mermaid(topology(plan_for(args.stack, args.overrides)))
    return f"```mermaid\n{chart}\n```" if args.markdown else chart


COMMANDS: dict[str, Callable[[Sequence[str]], str]] = {
    "diff": _diff,
    "access": _access,
    "certs": _certs,
    "budget": _budget,
    "graph": _graph,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _WARNED.clear()
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        text = command(argv[1:]) if command else _show(argv)
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    run(main)
