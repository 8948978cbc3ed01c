"""The access matrix: which secret paths each Vault identity can read, from the plan's policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.engine import PlanRun, unwrap
from tools.vault_acl import Rule, allows, matches, merge, parse_policy

POLICY = "vault:index/policy:Policy"
ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
SECRET = "vault:kv/secretV2:SecretV2"

# What a stolen container identity would try first (seed plan, Task 1.5), as (path, capability).
ESCALATIONS = {
    "write a policy": ("sys/policies/acl/devstack-escalate", "update"),
    "write a policy (legacy path)": ("sys/policy/devstack-escalate", "update"),
    "enable an auth method": ("sys/auth/devstack-escalate", "update"),
    "mount a secrets engine": ("sys/mounts/devstack-escalate", "update"),
    "read sys/": ("sys/mounts", "read"),
    "create a token": ("auth/token/create", "update"),
    "read another role's secret_id": ("auth/approle/role/postgres/secret-id", "update"),
}


@dataclass
class IdentityAccess:
    identity: str
    policies: list[str]
    reads: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    escalations: dict[str, bool] = field(default_factory=dict)  # attempt -> allowed?


def own_paths(identity: str) -> tuple[str, str]:
    return (f"secret/data/{identity}", f"secret/data/{identity}/")


def _outside_own(identity: str, rule: Rule) -> bool:
    exact, prefix = own_paths(identity)
    path = rule.path
    return not (path == exact or path.startswith(prefix))


def access_matrix(run: PlanRun) -> dict[str, IdentityAccess]:
    policies = {
        r.inputs["name"]: parse_policy(unwrap(r.inputs["policy"]), r.inputs["name"]) for r in run.by_type(POLICY)
    }
    secret_paths = sorted(f"{r.inputs['mount']}/data/{r.inputs['name']}" for r in run.by_type(SECRET))
    matrix: dict[str, IdentityAccess] = {}
    for role in sorted(run.by_type(ROLE), key=lambda r: r.inputs["roleName"]):
        identity = role.inputs["roleName"]
        names = list(role.inputs.get("tokenPolicies", []))
        access = IdentityAccess(identity, names)
        if not role.inputs.get("tokenNoDefaultPolicy", False):
            access.flags.append("Vault's default policy is attached")
        missing = [n for n in names if n not in policies]
        access.flags += [f"policy {n!r} is not in the plan" for n in missing]
        rules = [policies[n] for n in names if n in policies]
        acl = merge(rules)
        access.reads = [p for p in secret_paths if allows(acl, p, "read")]
        for rule in (r for group in rules for r in group):
            if _outside_own(identity, rule) and "deny" not in rule.capabilities:
                access.flags.append(f"grants {sorted(rule.capabilities)} on {rule.path} (outside its own path)")
            elif rule.capabilities - {"read", "deny"}:
                access.flags.append(f"grants {sorted(rule.capabilities - {'read'})} on its own path")
        for path in access.reads:
            if not matches(own_paths(identity)[0], path) and not path.startswith(own_paths(identity)[1]):
                access.flags.append(f"reads {path}")
        access.escalations = {name: allows(acl, path, cap) for name, (path, cap) in ESCALATIONS.items()}
        access.flags += [f"allowed to {name}" for name, allowed in access.escalations.items() if allowed]
        matrix[identity] = access
    return matrix


def matrix_json(matrix: dict[str, IdentityAccess]) -> dict[str, Any]:
    return {
        "schema": "devstack-access/1",
        "identities": {
            name: {"policies": a.policies, "reads": a.reads, "flags": a.flags, "escalations": a.escalations}
            for name, a in matrix.items()
        },
    }


def render_matrix(matrix: dict[str, IdentityAccess]) -> str:
    if not matrix:
        return (
            "No AppRole identities in this plan: containers read their secrets with the root token "
            "(phase 0). Try --set phase=1 or --set features=approle=true."
        )
    width = max(len(n) for n in matrix) + 2
    lines = [f"{'identity':<{width}}reads", f"{'-' * (width - 2):<{width}}-----"]
    for name, access in matrix.items():
        lines.append(f"{name:<{width}}{', '.join(access.reads) or '(no service secret)'}")
        lines += [f"{'':<{width}}! {flag}" for flag in access.flags]
    flagged = sum(1 for a in matrix.values() if a.flags)
    lines += ["", f"{len(matrix)} identities, {flagged} flagged"]
    return "\n".join(lines)
