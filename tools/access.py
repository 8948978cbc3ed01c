"""The access matrix: which secret paths each Vault identity can read, from the plan's policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.engine import PlanRun, unwrap
from tools.vault_acl import Rule, allows, capabilities, matches, merge, parse_policy

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


# --- the provisioner: the identity the Vault provider logs in with at strict ----------------

PROVISIONER = "provisioner"
MOUNT = "vault:index/mount:Mount"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
SECRET_ID = "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId"
AUDIT = "vault:index/audit:Audit"
CRUD = frozenset({"create", "read", "update", "delete"})
UPDATE = frozenset({"update"})

# What the provisioner must never do, whatever the plan: these stay with the unseal keys.
PROVISIONER_ESCALATIONS = {
    "generate a root token": ("sys/generate-root/attempt", "update"),
    "seal Vault": ("sys/seal", "update"),
    "read raw storage": ("sys/raw/core", "read"),
    "write its own policy": ("sys/policies/acl/provisioner", "update"),
    "mint itself a secret_id": ("auth/approle-provisioner/role/provisioner/secret-id", "update"),
    "enable another auth method": ("sys/auth/devstack-escalate", "update"),
    "mount another secrets engine": ("sys/mounts/devstack-escalate", "update"),
    "add another audit device": ("sys/audit/devstack-escalate", "update"),
    "create a token": ("auth/token/create", "update"),
}


def _add(needs: dict[str, frozenset[str]], path: str, capabilities: frozenset[str]) -> None:
    needs[path] = needs.get(path, frozenset()) | capabilities


def managed_paths(run: PlanRun) -> dict[str, frozenset[str]]:
    """The Vault API paths, with capabilities, that the provider calls for the plan's resources.

    One entry per resource of the plan (its create, read, update and delete calls per Vault's
    HTTP API), plus the provider's own token lookup: the provisioner's policy must be exactly this.
    """
    needs: dict[str, frozenset[str]] = {"auth/token/lookup-self": frozenset({"read"})}
    for r in run.by_type(POLICY):
        _add(needs, f"sys/policies/acl/{r.inputs['name']}", CRUD)
    for r in run.by_type(MOUNT):
        _add(needs, f"sys/mounts/{r.inputs['path']}", CRUD)
        _add(needs, f"sys/mounts/{r.inputs['path']}/tune", frozenset({"read", "update"}))
    for r in run.by_type(AUTH_BACKEND):
        # Enabling and disabling an auth method need sudo; the provider finds it by listing them.
        _add(needs, f"sys/auth/{r.inputs['path']}", CRUD | {"sudo"})
        _add(needs, f"sys/auth/{r.inputs['path']}/tune", frozenset({"read", "update"}))
        _add(needs, "sys/auth", frozenset({"read"}))
    for r in run.by_type(ROLE):
        role = f"auth/{unwrap(r.inputs['backend'])}/role/{r.inputs['roleName']}"
        _add(needs, role, CRUD)
        _add(needs, f"{role}/role-id", frozenset({"read", "update"}))
    for r in run.by_type(SECRET_ID):
        role = f"auth/{unwrap(r.inputs['backend'])}/role/{unwrap(r.inputs['roleName'])}"
        for call in ("secret-id", "secret-id/lookup", "secret-id/destroy"):
            _add(needs, f"{role}/{call}", UPDATE)
    for r in run.by_type(SECRET):
        _add(needs, f"{r.inputs['mount']}/data/{r.inputs['name']}", CRUD)
        _add(needs, f"{r.inputs['mount']}/metadata/{r.inputs['name']}", frozenset({"read", "update", "delete"}))
    for r in run.by_type(AUDIT):
        # Every audit call needs sudo; the provider reads a device back from the list of them.
        _add(needs, f"sys/audit/{r.inputs['path']}", CRUD | {"sudo"})
        _add(needs, "sys/audit", frozenset({"read", "sudo"}))
    return needs


@dataclass
class ProvisionerAccess:
    rules: int  # paths in its policy
    missing: list[str]  # what the plan needs and the policy does not allow
    beyond: list[str]  # what the policy allows and this plan does not need
    escalations: dict[str, bool]  # attempt -> allowed?


def provisioner_access(run: PlanRun, policy_text: str) -> ProvisionerAccess:
    rules = parse_policy(policy_text, PROVISIONER)
    acl = merge([rules])
    needs = managed_paths(run)
    missing = [
        f"{path}: {', '.join(sorted(caps - capabilities(acl, path)))}"
        for path, caps in sorted(needs.items())
        if caps - capabilities(acl, path)
    ]
    beyond = [
        f"{rule.path}: {', '.join(sorted(rule.capabilities - needs.get(rule.path, frozenset())))}"
        for rule in rules
        if rule.capabilities - needs.get(rule.path, frozenset())
    ]
    escalations = {name: allows(acl, path, cap) for name, (path, cap) in PROVISIONER_ESCALATIONS.items()}
    return ProvisionerAccess(len(rules), missing, beyond, escalations)


def provisioner_json(access: ProvisionerAccess) -> dict[str, Any]:
    return {
        "rules": access.rules,
        "missing": access.missing,
        "beyond": access.beyond,
        "escalations": access.escalations,
    }


def render_provisioner(access: ProvisionerAccess) -> str:
    lines = [
        "",
        f"provisioner (the Vault provider's login at strict, policies/vault/{PROVISIONER}.hcl): {access.rules} paths",
    ]
    lines += [f"  ! needed by the plan, not allowed: {m}" for m in access.missing]
    if access.beyond:
        count = len(access.beyond)
        lines.append(f"  {count} paths for what this plan does not run (another profile's; --json lists them)")
    lines += [f"  ! allowed to {name}" for name, allowed in access.escalations.items() if allowed]
    if not access.missing and not any(access.escalations.values()):
        lines.append("  covers every Vault resource of this plan, and no escalation")
    return "\n".join(lines)
