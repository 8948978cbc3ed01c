"""Retiring the root token at strict, in the plan (mock engine): how the Vault provider logs in.

At strict the provider logs in as the provisioner (AppRole, auth/approle-provisioner) with the
ids the every-run bootstrap step prints, and has no token input; below strict it uses the root
token that same step prints (a valid one: it makes a new one when Vault refuses the old). What
the bootstrap does with Vault is tests/test_vault_bootstrap_root_sh.py's (against the fake).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from components.vault_server import PROVISIONER_LOGIN, PROVISIONER_POLICY
from devstack.errors import ConfigError
from devstack.phases import resolve_features
from tests.conftest import PlanFactory
from tools.diff import diff_plans
from tools.engine import PlanRun, Secret, unwrap

ROOT = Path(__file__).resolve().parent.parent
ALL = "profiles=full,reference"
COMMAND = "command:local:Command"
PROVIDER = "pulumi:providers:vault"
ROLE = "vault:appRole/authBackendRole:AuthBackendRole"


def _step_output(run: PlanRun, name: str) -> dict[str, str]:
    return json.loads(unwrap(run.one(COMMAND, name).outputs["stdout"]))


def test_at_strict_the_provider_logs_in_as_the_provisioner(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=4")
    (provider,) = run.by_type(PROVIDER)
    assert "token" not in provider.inputs
    assert isinstance(provider.inputs["authLogin"], Secret)
    login = json.loads(unwrap(provider.inputs["authLogin"]))
    assert login["path"] == PROVISIONER_LOGIN == "auth/approle-provisioner/login"
    # the ids come from the step that runs on every `pulumi up`
    assert login["parameters"] == _step_output(run, "vault-unseal")
    assert set(login["parameters"]) == {"role_id", "secret_id"}
    assert provider.inputs["skipChildToken"] == "true"  # the provisioner may not create tokens
    for step in ("vault-init", "vault-unseal"):
        environment = run.one(COMMAND, step).inputs["environment"]
        assert environment["DEVSTACK_ROOT_TOKEN"] == "retire"
        assert environment["DEVSTACK_PROVISIONER_FILE"].endswith("/dev/vault-provisioner.json")
        assert (
            Path(environment["DEVSTACK_PROVISIONER_FILE"]).parent
            == Path(environment["DEVSTACK_VAULT_INIT_FILE"]).parent
        )
        assert (ROOT / environment["DEVSTACK_PROVISIONER_POLICY"]).is_file()
    assert PROVISIONER_POLICY == "./policies/vault/provisioner.hcl"


@pytest.mark.parametrize("segmentation", ["true", "false"])
def test_at_strict_the_provisioner_is_bound_to_managements_host_addresses(
    shared_plan: PlanFactory, segmentation: str
) -> None:
    """Both bootstrap steps bind the provisioner to exactly the /32s management is bound to
    (where this machine's connections reach Vault from), with or without segmentation."""
    run = shared_plan(ALL, "phase=4", f"features=segmentation={segmentation}")
    (management,) = [r.inputs for r in run.by_type(ROLE) if r.inputs["roleName"] == "management"]
    bound = management["secretIdBoundCidrs"]
    assert bound == management["tokenBoundCidrs"]
    assert bound
    assert all(c.endswith("/32") for c in bound)
    for step in ("vault-init", "vault-unseal"):
        environment = run.one(COMMAND, step).inputs["environment"]
        assert environment["DEVSTACK_PROVISIONER_CIDRS"].split(",") == bound


def test_at_strict_no_step_output_holds_a_root_token(shared_plan: PlanFactory) -> None:
    """Both bootstrap steps re-run at strict (their environment changes) and print the
    provisioner's ids: nothing in the state carries a root token from then on."""
    run = shared_plan(ALL, "phase=4")
    for step in ("vault-init", "vault-unseal"):
        assert "root_token" not in _step_output(run, step)
    text = json.dumps([unwrap(r.inputs) for r in run.resources] + [unwrap(r.outputs) for r in run.resources])
    assert "root_token" not in text
    assert '"hvs.' not in text


@pytest.mark.parametrize("phase", [0, 1, 2, 3])
def test_below_strict_the_provider_uses_the_current_root_token(shared_plan: PlanFactory, phase: int) -> None:
    run = shared_plan(ALL, f"phase={phase}")
    (provider,) = run.by_type(PROVIDER)
    assert "authLogin" not in provider.inputs
    assert isinstance(provider.inputs["token"], Secret)
    assert unwrap(provider.inputs["token"]) == _step_output(run, "vault-unseal")["root_token"]
    for step in ("vault-init", "vault-unseal"):
        environment = run.one(COMMAND, step).inputs["environment"]
        assert environment["DEVSTACK_ROOT_TOKEN"] == "keep"
        assert "DEVSTACK_PROVISIONER_POLICY" not in environment
        assert "DEVSTACK_PROVISIONER_CIDRS" not in environment


def test_the_walk_from_strict_to_phase_0_updates_the_provider_in_place(shared_plan: PlanFactory) -> None:
    """4 -> 3 -> 2 -> 1 -> 0: the provider changes how it logs in (an update: the bridge replaces
    a provider only for config marked to), both bootstrap steps run again (keep: a root token
    comes back), and nothing Vault holds is replaced or deleted on the way."""
    walk = [shared_plan(ALL, f"phase={phase}") for phase in (4, 3, 2, 1, 0)]
    first = diff_plans(walk[0], walk[1])
    (provider,) = [c for c in first.changes if c.type == PROVIDER]
    assert provider.action == "update"
    assert {"authLogin", "token"} <= set(provider.properties)
    steps = {c.name: c for c in first.changes if c.type == COMMAND and c.name.startswith("vault-")}
    assert {steps[s].action for s in ("vault-init", "vault-unseal")} == {"update"}  # an update re-runs create
    assert "environment" in steps["vault-init"].properties
    for before, after in itertools.pairwise(walk):
        changes = diff_plans(before, after)
        assert not [c for c in changes.of("replace") if c.type.startswith("vault:")]
        assert not [
            c for c in changes.of("delete") if c.type in ("vault:index/mount:Mount", "vault:kv/secretV2:SecretV2")
        ]
        assert [c.action for c in changes.changes if c.type == PROVIDER] in ([], ["update"])
    # at phase 0 the containers read with the root token the every-run step printed
    token = _step_output(walk[-1], "vault-unseal")["root_token"]
    (provider,) = walk[-1].by_type(PROVIDER)
    assert unwrap(provider.inputs["token"]) == token


def test_strict_without_approle_is_refused() -> None:
    with pytest.raises(ConfigError, match="strict needs approle=true"):
        resolve_features(4, {"approle": "false"})
    with pytest.raises(ConfigError, match="strict needs approle=true"):
        resolve_features(0, {"strict": "true"})
    assert resolve_features(1, {"strict": "true"}).strict
