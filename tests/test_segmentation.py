"""Phase 1c: tier networks derived from the flows, and safe moves between every pair of phases.

Read-only checks share one plan per phase (tests.conftest.shared_plan); tests that change a
plan make their own."""

from __future__ import annotations

import ipaddress
import itertools
import json

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.model import USERS_FILE_KEY, Tier
from devstack.settings import load_settings
from devstack.topology import cross_tier_links, networks
from tests.conftest import CONTAINER, NETWORK, PlanFactory
from tools.diff import diff_plans
from tools.engine import PlanRun, unwrap

ALL = "profiles=full,reference"
DATA_TYPES = (
    "docker:index/volume:Volume",
    "vault:kv/secretV2:SecretV2",
    "vault:index/mount:Mount",
    "random:index/randomPassword:RandomPassword",
)


def memberships(run: PlanRun) -> dict[str, set[str]]:
    """Docker network name -> the services attached to it."""
    members: dict[str, set[str]] = {}
    for record in run.by_type(CONTAINER):
        for attachment in record.inputs["networksAdvanced"]:
            members.setdefault(attachment["name"], set()).add(record.name)
    return members


def flows_between(a: str, b: str) -> bool:
    return any(f.to == b for f in SERVICES_BY_NAME[a].flows) or any(f.to == a for f in SERVICES_BY_NAME[b].flows)


PHASES = range(5)


@pytest.fixture
def phase_runs(shared_plan: PlanFactory) -> dict[int, PlanRun]:
    return {phase: shared_plan(ALL, f"phase={phase}") for phase in PHASES}


def test_phase0_has_one_network(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[0]
    assert [n.inputs["name"] for n in run.by_type(NETWORK)] == ["dev-network"]


def test_phase1_has_the_four_tier_networks_as_the_reference(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[1]
    subnets = {n.inputs["name"]: n.inputs["ipamConfigs"][0]["subnet"] for n in run.by_type(NETWORK)}
    assert subnets["dev-vault-network"] == "172.20.1.0/24"
    assert subnets["dev-data-network"] == "172.20.2.0/24"
    assert subnets["dev-app-network"] == "172.20.3.0/24"
    assert subnets["dev-observability-network"] == "172.20.4.0/24"
    links = {name for name in subnets if name.startswith("dev-link-")}
    running = {c.name for c in run.by_type(CONTAINER)}  # services behind an off switch have no link
    assert links == {f"dev-{link.key}" for link in cross_tier_links() if link.client in running}
    for name in links:
        assert ipaddress.ip_network(subnets[name]).prefixlen == 28


def test_no_two_tiers_share_a_network_without_a_flow(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[1]
    for network, members in memberships(run).items():
        for a, b in itertools.combinations(sorted(members), 2):
            tier_a, tier_b = SERVICES_BY_NAME[a].tier, SERVICES_BY_NAME[b].tier
            if tier_a == tier_b or "vault" in (a, b):
                continue
            assert flows_between(a, b), f"{a} ({tier_a}) and {b} ({tier_b}) share {network} without a flow"


def test_every_flow_has_a_shared_network(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[1]
    networks_of: dict[str, set[str]] = {}
    for network, members in memberships(run).items():
        for member in members:
            networks_of.setdefault(member, set()).add(network)
    for client, joined in networks_of.items():
        for flow in SERVICES_BY_NAME[client].flows:
            if flow.to in networks_of:
                assert joined & networks_of[flow.to], f"{client} -> {flow.to}"


def test_clients_stay_in_their_own_tier_and_vault_joins_them(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[1]
    members = memberships(run)
    assert members["dev-vault-network"] == {"vault"}
    for tier in (Tier.DATA, Tier.APP, Tier.OBSERVABILITY):
        network = f"dev-{tier.value}-network"
        assert "vault" in members[network]
        assert {m for m in members[network] if m != "vault"} == {
            s.name
            for s in SERVICES_BY_NAME.values()
            if s.tier is tier and s.switch in (None, "databaseExporters") and s.feature is None
        }


def test_static_addresses_and_aliases_are_kept(phase_runs: dict[int, PlanRun]) -> None:
    zero, one = phase_runs[0], phase_runs[1]
    for name in (s.name for s in SERVICES_BY_NAME.values() if s.switch is None and s.feature is None):
        flat = zero.one(CONTAINER, name).inputs["networksAdvanced"][0]
        primary = one.one(CONTAINER, name).inputs["networksAdvanced"][0]
        assert flat["ipv4Address"] == primary["ipv4Address"], name
        assert primary["aliases"] == [name]
    vault = one.one(CONTAINER, "vault").inputs["networksAdvanced"]
    assert [a["ipv4Address"] for a in vault] == ["172.20.1.5", "172.20.2.5", "172.20.3.5", "172.20.4.5"]


def test_published_ports_keep_working(phase_runs: dict[int, PlanRun]) -> None:
    zero, one = phase_runs[0], phase_runs[1]
    assert one.outputs["endpoints"]["postgres"]["ports"] == zero.outputs["endpoints"]["postgres"]["ports"]


def test_other_networks_wait_for_the_first(phase_runs: dict[int, PlanRun]) -> None:
    run = phase_runs[1]
    first = run.one(NETWORK, "network")
    assert first.inputs["name"] == "dev-vault-network"
    assert first.property_dependencies["name"] == []
    for network in run.by_type(NETWORK):
        if network is not first:
            assert first.urn in network.dependencies, network.name
            # Its name comes from the first network: so a replacement of the first one (by the
            # flat network, going back to phase 0) deletes it beforehand, in the same update
            # (tests/test_engine_order_real.py runs that through the real engine).
            assert network.property_dependencies["name"] == [first.urn], network.name
    for tier in Tier:
        spec = next(
            n for n in networks(load_settings(run.config, "dev")) if n.docker_name == f"dev-{tier.value}-network"
        )
        assert spec.ip_range is not None
        assert ipaddress.IPv4Network(spec.ip_range).subnet_of(ipaddress.IPv4Network(spec.subnet))


def test_sub_step_1c_is_a_feature_override(plan: PlanFactory) -> None:
    run = plan(ALL, "phase=0", "features=segmentation=true")
    assert "dev-data-network" in {n.inputs["name"] for n in run.by_type(NETWORK)}
    assert not run.by_type("vault:appRole/authBackendRole:AuthBackendRole")


@pytest.mark.parametrize(("before", "after"), [(a, b) for a in PHASES for b in PHASES if a != b])
def test_moving_between_phases_never_touches_data(phase_runs: dict[int, PlanRun], before: int, after: int) -> None:
    # Each phase planned once; the mocks derive every value from the URN, so two runs agree on
    # whatever did not change, as the checkpoint would.
    start, target = phase_runs[before], phase_runs[after]
    diff = diff_plans(start, target)
    touched = [c for c in diff.changes if c.type in DATA_TYPES and c.action != "create"]
    touched = [c for c in touched if not _only_users_file_changed(start, target, c.urn)]
    assert touched == [], [(c.action, c.type, c.name, c.properties) for c in touched]
    # The data resources are the same URNs with the same inputs on both sides.
    for type_token in DATA_TYPES:
        before_inputs = {r.urn: _data(r.inputs) for r in start.by_type(type_token)}
        assert before_inputs == {r.urn: _data(r.inputs) for r in target.by_type(type_token)}
    # A resource that moves keeps its URN through an alias: nothing is deleted and re-created
    # under another name with the same Docker name.
    created = {c.name for c in diff.of("create") if c.type == CONTAINER}
    deleted = {c.name for c in diff.of("delete") if c.type == CONTAINER}
    assert not created & deleted


def _data(inputs: dict[str, object]) -> dict[str, object]:
    """A resource's inputs, a secret's derived users file aside: a Redis node's ACL file lists the
    management's backup users from the backups feature on (phase 2); the passwords never change."""
    if "dataJson" not in inputs:
        return inputs
    data = json.loads(unwrap(inputs["dataJson"]))
    data.pop(USERS_FILE_KEY, None)
    return {**inputs, "dataJson": data}


def _only_users_file_changed(start: PlanRun, target: PlanRun, urn: str) -> bool:
    before = [r for r in start.resources if r.urn == urn]
    after = [r for r in target.resources if r.urn == urn]
    return len(before) == len(after) == 1 and _data(before[0].inputs) == _data(after[0].inputs)
