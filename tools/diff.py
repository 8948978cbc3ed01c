"""What `pulumi up` would do going from one plan to another, by each provider's rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.engine import PlanRun, ResourceRecord, make_urn, unwrap
from tools.engine.provider_rules import changes_force_replacement, state_only


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    name: str
    action: str  # create | delete | replace | update
    properties: tuple[str, ...] = ()
    old_urn: str = ""  # set when the resource moved and an alias carried it
    state_only: bool = False  # an update the provider records without applying it


@dataclass
class PlanDiff:
    changes: list[Change] = field(default_factory=list)

    def of(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    def summary(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in ("create", "update", "replace", "delete")}


def _alias_urns(record: ResourceRecord, stack: str, project: str) -> list[str]:
    """URNs a resource may have had before, from URN aliases and alias specs."""
    urns = []
    for alias in record.options.get("aliases", []):
        if alias.startswith("urn:pulumi:"):
            urns.append(alias)
            continue
        spec = dict(part.split("=", 1) for part in alias.split(",") if "=" in part)
        name = spec.get("name", record.name)
        type_ = spec.get("type", record.type)
        parent = "" if spec.get("noParent") in ("True", "true") else spec.get("parentUrn") or record.parent
        urns.append(make_urn(spec.get("stack", stack), spec.get("project", project), parent, type_, name))
    return urns


def changed_properties(old: ResourceRecord, new: ResourceRecord) -> tuple[str, ...]:
    before: dict[str, Any] = unwrap(old.inputs)
    after: dict[str, Any] = unwrap(new.inputs)
    ignored = set(new.options.get("ignore_changes", []))
    keys = (set(before) | set(after)) - ignored
    return tuple(sorted(k for k in keys if before.get(k) != after.get(k)))


def diff_plans(old: PlanRun, new: PlanRun) -> PlanDiff:
    old_by_urn = {r.urn: r for r in old.resources}
    claimed: set[str] = set()
    result = PlanDiff()
    for record in new.resources:
        previous = old_by_urn.get(record.urn)
        moved_from = ""
        if previous is None:
            for alias in _alias_urns(record, new.stack, new.project):
                if alias in old_by_urn:
                    previous, moved_from = old_by_urn[alias], alias
                    break
        if previous is None:
            result.changes.append(Change(record.urn, record.type, record.name, "create"))
            continue
        claimed.add(previous.urn)
        if not record.custom:
            continue
        properties = changed_properties(previous, record)
        if previous.provider != record.provider:
            properties = (*properties, "(provider)")
        if not properties:
            continue
        forced = set(record.options.get("replace_on_changes", []))
        replace = "(provider)" in properties or changes_force_replacement(record.type, properties, forced)
        action = "replace" if replace else "update"
        result.changes.append(
            Change(
                record.urn,
                record.type,
                record.name,
                action,
                properties,
                moved_from,
                action == "update" and state_only(record.type, properties),
            )
        )
    for record in old.resources:
        if record.urn not in claimed:
            result.changes.append(Change(record.urn, record.type, record.name, "delete"))
    return result
