"""The CrossGuard pack's rules over the offline plan: every phase and profile passes, apart from
the known defects named below; a violation planted in a copy of a plan resource is reported,
one per rule; the pack's policies wrap the same validators."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.policy import PolicyCustomTimeouts
from pulumi_policy.proxy import unknown_checking_proxy

from policies.crossguard import validators
from policies.crossguard.pack import build_policies, plain
from policies.crossguard.validators import CONTAINER, PRIVATE_KEY, REMOTE_IMAGE, VOLUME, Resource, Violation
from tests.conftest import PlanFactory
from tools.engine import PlanRun
from tools.policy import check_run, main, notes, pack_config, plan_resources, settings_of

ALL = "profiles=full,reference"
PROFILES = ["minimal", "standard", "full", "reference", "full,reference"]

# Real defects the pack finds in the current program, each with its issue. Remove an entry when
# its fix lands (the sweep fails until then, and after, if the entry stays).
KNOWN_DEFECTS: set[tuple[str, str]] = set()  # issue 10's cAdvisor bind of / is gone


def _run(shared_plan: PlanFactory, profiles: str, phase: int) -> PlanRun:
    # The dev stack is phase 0: asking for exactly its config shares the plan with other tests.
    return shared_plan(f"profiles={profiles}") if phase == 0 else shared_plan(f"profiles={profiles}", f"phase={phase}")


def _found(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.rule, v.resource.rsplit("::", 1)[-1]) for v in violations}


# Every phase with all 24 containers; each profile at each TLS mode and segmentation state
# (phases 2 and 3 plan the same containers as phase 1 today: their features do not exist yet,
# and the suite stays fast by not planning them once per profile).
SWEEP = [("full,reference", phase) for phase in range(5)] + [(p, phase) for p in PROFILES[:-1] for phase in (0, 1, 4)]


@pytest.mark.parametrize(("profiles", "phase"), SWEEP)
def test_every_phase_and_profile_passes_but_for_known_defects(
    shared_plan: PlanFactory, profiles: str, phase: int
) -> None:
    run = _run(shared_plan, profiles, phase)
    found = _found(check_run(run, pack_config(settings_of(run))))
    running = {r.name for r in run.resources if r.type == CONTAINER}
    assert found == {(rule, name) for rule, name in KNOWN_DEFECTS if name in running}


def _config(run: PlanRun) -> dict[str, dict[str, Any]]:
    return pack_config(settings_of(run))


Change = Callable[[dict[str, Any]], None]


def _altered(resources: list[Resource], type_: str, name: str, change: Change) -> list[Resource]:
    """A copy of the plan's resources with one resource's inputs changed."""
    result = []
    for resource in resources:
        if resource.type == type_ and resource.name == name:
            inputs = copy.deepcopy(dict(resource.inputs))
            change(inputs)
            result.append(dataclasses.replace(resource, inputs=inputs))
        else:
            result.append(resource)
    return result


def _harden(inputs: dict[str, Any]) -> None:
    inputs.update(
        securityOpts=["no-new-privileges:true"],
        capabilities={"drops": ["ALL"]},
        user="999:999",
        readOnly=True,
        pidsLimit=256,
    )


PLANTS: dict[str, tuple[str, str, Change]] = {
    "ports-within-bind-address": (CONTAINER, "postgres", lambda i: i["ports"][0].update(ip="0.0.0.0")),
    "images-exact-tag": (REMOTE_IMAGE, "postgres-image", lambda i: i.update(name="postgres:latest")),
    "no-vault-root-token": (
        CONTAINER,
        "forgejo",
        lambda i: i["uploads"].append({"file": "/devstack/vault-token", "content": "[secret]", "permissions": "0400"}),
    ),
    "no-secrets-in-env-or-argv": (CONTAINER, "mysql", lambda i: i["envs"].append("MYSQL_PWD=planted")),
    "no-engine-socket": (
        CONTAINER,
        "vector",
        lambda i: i["volumes"].append({"hostPath": "/var/run/docker.sock", "containerPath": "/docker.sock"}),
    ),
    "no-privileged": (CONTAINER, "grafana", lambda i: i.update(privileged=True)),
    "tls-key-strength": (PRIVATE_KEY, "postgres-tls", lambda i: i.update(ecdsaCurve="P224")),
    validators.RULE_TIERS: (
        CONTAINER,
        "grafana",
        lambda i: i["networksAdvanced"].append({"name": "dev-data-network", "aliases": ["grafana"]}),
    ),
}


@pytest.mark.parametrize("rule", sorted(PLANTS))
def test_a_planted_violation_is_reported(shared_plan: PlanFactory, rule: str) -> None:
    run = shared_plan(ALL, "phase=1")
    resources, config = plan_resources(run), _config(run)
    before = _found(validators.check_all(resources, config))
    type_, name, change = PLANTS[rule]
    after = _found(validators.check_all(_altered(resources, type_, name, change), config))
    assert after - before == {(rule, name)}
    assert before - after == set()


def test_an_unprotected_volume_is_reported(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=1")
    resources, config = plan_resources(run), _config(run)
    for flags, expected in (((False, True), 1), ((True, False), 1), ((False, False), 2)):
        planted = [
            Resource(r.type, r.name, r.inputs, r.urn, *flags) if (r.type, r.name) == (VOLUME, "vault-data") else r
            for r in resources
        ]
        found = [v for v in validators.check_all(planted, config) if v.rule == "data-volumes-protected"]
        assert len(found) == expected
        assert all(v.resource.endswith("::vault-data") for v in found)


def test_hardening_is_reported_once_enforced(shared_plan: PlanFactory) -> None:
    """A container hardened by hand passes; taking one item away is reported."""
    run = shared_plan(ALL, "phase=4")
    config = {**_config(run), "strict-hardening": {"enforce": True}}
    hardened = _altered(plan_resources(run), CONTAINER, "postgres", _harden)
    postgres = [v for v in validators.check_all(hardened, config) if v.resource.endswith("::postgres")]
    assert [v.rule for v in postgres] == []
    planted = _altered(hardened, CONTAINER, "postgres", lambda i: i.update(readOnly=False))
    found = [v for v in validators.check_all(planted, config) if v.resource.endswith("::postgres")]
    assert [(v.rule, v.message) for v in found] == [
        ("strict-hardening", "root filesystem is writable (readOnly is not true)")
    ]


def test_phase_4_hardens_every_container_but_for_named_exceptions(shared_plan: PlanFactory) -> None:
    """The strict end state: the rule is on at phase 4 and passes (the sweep above), each container
    showing every item or an exception its catalog entry names with a reason; without the
    exceptions, exactly the excused items are reported."""
    run = shared_plan(ALL, "phase=4")
    config = _config(run)["strict-hardening"]
    assert config["enforce"] is True
    assert not any(line.startswith("strict-hardening") for line in notes(settings_of(run)))
    exceptions = config["exceptions"]
    assert all(reason for items in exceptions.values() for reason in items.values())
    for record in run.by_type(CONTAINER):
        excused = exceptions.get(record.name, {})
        assert (record.inputs.get("readOnly") is True) == ("readOnly" not in excused), record.name
        assert (record.inputs.get("user") is None) == ("user" in excused), record.name
    assert {name for name, items in exceptions.items() if "user" in items} == {"forgejo", "vector"}
    assert sorted(name for name in _names(run) if "readOnly" not in exceptions.get(name, {})) == ["cadvisor"]
    bare = {**_config(run), "strict-hardening": {"enforce": True}}
    reported = [v for v in validators.check_all(plan_resources(run), bare) if v.rule == "strict-hardening"]
    assert (
        len(reported) == sum(len(items) for items in exceptions.values()) == 29
    )  # three more: the database exporters, on by default


def _names(run: PlanRun) -> list[str]:
    return [record.name for record in run.by_type(CONTAINER)]


def test_hardening_follows_its_feature_at_any_phase(shared_plan: PlanFactory) -> None:
    off = _config(shared_plan(ALL, "phase=4", "features=hardening=false"))["strict-hardening"]
    assert off == {"enforce": False, "exceptions": {}}
    early = shared_plan(ALL, "phase=1", "features=hardening=true")
    assert _config(early)["strict-hardening"]["enforce"] is True
    assert check_run(early, _config(early)) == []


def test_a_pid_limit_without_its_command_is_reported(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=4")
    resources, config = plan_resources(run), _config(run)
    assert validators.check_pids_applied(resources, config) == []
    without = [r for r in resources if not (r.type == validators.LOCAL_COMMAND and r.name == "grafana-pids-limit")]
    assert _found(validators.check_all(without, config)) == {(validators.RULE_PIDS, "grafana")}

    def relabel(inputs: dict[str, Any]) -> None:
        for entry in inputs["labels"]:
            if entry["label"] == validators.PIDS_LABEL:
                entry["value"] = "100000"

    (violation,) = validators.check_pids_applied(_altered(resources, CONTAINER, "grafana", relabel), config)
    assert "docker update --pids-limit 100000 dev-grafana" in violation.message


def test_the_config_follows_the_features(shared_plan: PlanFactory) -> None:
    phase0 = _config(shared_plan(ALL, "phase=0"))
    assert phase0["no-vault-root-token"] == {"approle": False}
    assert phase0[validators.RULE_TIERS]["segmentation"] is False
    phase1 = _config(shared_plan(ALL, "phase=1"))
    assert phase1["no-vault-root-token"] == {"approle": True}
    tiers = phase1[validators.RULE_TIERS]
    assert tiers["segmentation"] is True
    assert tiers["tiers"]["grafana"] == "observability"
    assert ["forgejo", "postgres"] in tiers["flows"]
    assert tiers["hubs"] == {"vault": ["data", "app", "observability"]}
    assert phase1["ports-within-bind-address"] == {"bindAddress": "127.0.0.1"}
    assert set(phase1) <= set(validators.RULE_NAMES)


def test_phase0_would_break_the_rules_it_leaves_off(shared_plan: PlanFactory) -> None:
    """Phase 0 (the rollback target) hands the root token to containers and runs one flat network
    by design: the config turns those two rules off there, and they would fire otherwise."""
    run = shared_plan("profiles=minimal")
    config = _config(run)
    config["no-vault-root-token"] = {"approle": True}
    config[validators.RULE_TIERS] = {**config[validators.RULE_TIERS], "segmentation": True}
    rules = {v.rule for v in check_run(run, config)}
    assert rules == {"no-vault-root-token", validators.RULE_TIERS}


# --- the pack's policies around the validators -----------------------------------------------


def test_the_pack_has_one_policy_per_rule() -> None:
    assert [p.name for p in build_policies()] == list(validators.RULE_NAMES)


def test_plain_turns_unknowns_into_the_mark() -> None:
    unknown_string = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    props = unknown_checking_proxy({"ports": [{"ip": unknown_string, "external": 1}], "name": "x"})
    assert plain(props) == {"ports": [{"ip": validators.UNKNOWN, "external": 1}], "name": "x"}


def _validate(policy: ResourceValidationPolicy, type_: str, props: dict[str, Any], config: dict[str, Any]) -> list[str]:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(type_, unknown_checking_proxy(props), "urn:x", "x", options, None, config)
    messages: list[str] = []
    policy.validate(args, lambda message, _urn=None: messages.append(message))
    return messages


def test_a_resource_policy_reports_what_its_validator_finds(shared_plan: PlanFactory) -> None:
    policies = {p.name: p for p in build_policies()}
    ports = policies["ports-within-bind-address"]
    assert isinstance(ports, ResourceValidationPolicy)
    postgres = json.loads(json.dumps(shared_plan(ALL, "phase=1").one(CONTAINER, "postgres").inputs, default=str))
    assert _validate(ports, CONTAINER, postgres, {"bindAddress": "127.0.0.1"}) == []
    assert len(_validate(ports, CONTAINER, postgres, {"bindAddress": "127.0.0.2"})) == len(postgres["ports"])
    assert _validate(ports, VOLUME, postgres, {"bindAddress": "127.0.0.2"}) == []  # not its type
    volumes = policies["data-volumes-protected"]
    assert isinstance(volumes, ResourceValidationPolicy)
    assert len(_validate(volumes, VOLUME, {"name": "dev-x"}, {})) == 1  # protect=False above


# --- the command -----------------------------------------------------------------------------


def test_check_command(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert main(["check", "--set", "profiles=minimal", "--set", "phase=1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"0 violation(s) of {len(validators.RULE_NAMES)} rules"
    assert main(["check", "--json", "--set", "profiles=full"]) == 0  # cAdvisor no longer binds /
    document = json.loads(capsys.readouterr().out)
    assert document["violations"] == []


def test_config_command(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert main(["config", "--set", "profiles=minimal", "--set", "phase=4"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["no-vault-root-token"] == {"approle": True}
    assert main(["config", "--set", "phase=9"]) == 2
    assert capsys.readouterr().err.startswith("error: devstack:phase:")
    assert main(["nonsense"]) == 2
