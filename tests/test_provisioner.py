"""The provisioner's policy: exactly the Vault calls the plan's resources need, nothing more.

The paths are derived from the plan (every policy, AppRole, secret_id, KV secret, mount, auth
method and audit device it holds), never listed by hand here. No Vault binary exists on this
machine (the module proxy refused it), so whether a real Vault agrees is not proven here.
"""

from __future__ import annotations

import json

import pytest

from components.identity import policy_document
from tests.conftest import PlanFactory
from tools.access import (
    AUDIT,
    PROVISIONER,
    PROVISIONER_ESCALATIONS,
    managed_paths,
    provisioner_access,
    render_provisioner,
)
from tools.plan import main
from tools.vault_acl import parse_policy

EVERYTHING = ("phase=4", "profiles=full,reference", "redisReplicas=true", "databaseExporters=true")


def test_policy_is_exactly_what_the_whole_plan_manages(shared_plan: PlanFactory) -> None:
    run = shared_plan(*EVERYTHING)
    access = provisioner_access(run, policy_document(PROVISIONER))
    assert access.missing == []
    assert access.beyond == []
    assert access.escalations == dict.fromkeys(PROVISIONER_ESCALATIONS, False)
    assert access.rules == len(managed_paths(run))
    shown = render_provisioner(access).splitlines()
    assert shown[-2:] == [shown[-2], "  covers every Vault resource of this plan, and no escalation"]
    assert shown[-2].endswith(f": {access.rules} paths")


@pytest.mark.parametrize("profiles", ["minimal", "standard", "full"])
def test_policy_covers_every_profile_at_strict(shared_plan: PlanFactory, profiles: str) -> None:
    access = provisioner_access(shared_plan("phase=4", f"profiles={profiles}"), policy_document(PROVISIONER))
    assert access.missing == []
    # what a smaller profile does not run is still the program's (a profile can come back)
    assert all(b.startswith(("auth/approle/role/", "sys/policies/acl/")) for b in access.beyond), access.beyond


def test_paths_come_from_the_plan(shared_plan: PlanFactory) -> None:
    run = shared_plan(*EVERYTHING)
    needs = managed_paths(run)
    assert needs["sys/audit/file"] == {"create", "read", "update", "delete", "sudo"}
    assert needs["secret/data/postgres"] == {"create", "read", "update", "delete"}
    assert needs["auth/approle/role/postgres/secret-id"] == {"update"}
    assert not any(p.startswith(("sys/policies/acl/provisioner", "auth/approle-provisioner")) for p in needs)
    # no audit device in the plan: no audit path needed, so the policy's become "beyond"
    without_audit = type(run)(run.project, run.stack, run.config, [r for r in run.resources if r.type != AUDIT], {})
    assert not any(p.startswith("sys/audit") for p in managed_paths(without_audit))
    access = provisioner_access(without_audit, policy_document(PROVISIONER))
    assert sorted(b.split(":")[0] for b in access.beyond) == ["sys/audit", "sys/audit/file"]


def test_a_missing_or_broad_rule_is_reported(shared_plan: PlanFactory) -> None:
    run = shared_plan(*EVERYTHING)
    text = policy_document(PROVISIONER).replace('path "sys/audit/file"', 'path "sys/audit/elsewhere"')
    text += 'path "sys/*" {\n  capabilities = ["update"]\n}\n'
    access = provisioner_access(run, text)
    assert access.missing == ["sys/audit/file: create, delete, read, sudo"]  # sys/* gives update
    assert "sys/*: update" in access.beyond
    assert access.escalations["seal Vault"]
    assert access.escalations["enable another auth method"]
    shown = render_provisioner(access)
    assert "! needed by the plan, not allowed: sys/audit/file" in shown
    assert "! allowed to seal Vault" in shown
    assert "covers every Vault resource" not in shown


def test_policy_is_valid_hcl_with_exact_paths_only() -> None:
    rules = parse_policy(policy_document(PROVISIONER), PROVISIONER)
    assert all("*" not in r.path and "+" not in r.path for r in rules)
    assert len({r.path for r in rules}) == len(rules)


def test_access_command_shows_the_provisioner_at_strict_only(
    capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert main(["access", "--set", "phase=4"]) == 0
    text = capsys.readouterr().out
    assert "provisioner (the Vault provider's login at strict" in text
    assert "covers every Vault resource of this plan, and no escalation" in text
    assert main(["access", "--json", "--set", "phase=4"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document[PROVISIONER]["missing"] == []
    assert not any(document[PROVISIONER]["escalations"].values())
    assert main(["access", "--json", "--set", "phase=3"]) == 0
    assert PROVISIONER not in json.loads(capsys.readouterr().out)
    assert main(["access", "--set", "phase=3"]) == 0
    assert "provisioner" not in capsys.readouterr().out


def test_policy_suffices_for_the_provider_on_the_walk_4_to_0(shared_plan: PlanFactory) -> None:
    """Every phase's Vault resources, each step's creates and deletes alike, are within the
    policy: the provider could stay the provisioner on the way back. Phase 0's containers still
    read with a root token, which is why the way back is not built yet (docs/vault.md)."""
    policy = policy_document(PROVISIONER)
    for phase in (4, 3, 2, 1, 0):
        run = shared_plan("profiles=full,reference", "redisReplicas=true", f"phase={phase}")
        access = provisioner_access(run, policy)
        assert access.missing == [], phase
        assert not any(access.escalations.values()), phase
