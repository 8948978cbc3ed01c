"""Network segmentation, proven on a real Docker engine (see tests/dockerlab.py).

Phase 1's planned networks are recreated with one placeholder per service that listens on the
service's ports; probes from inside each container then show which connections the topology
lets through. Every flow the catalog declares must connect, by service name (so Docker's DNS
resolves it on a shared network). Between tiers, everything else must fail, at every address
the server has and by its name, except:
- the reverse of a declared flow: a link network is a bridge, and a bridge carries a
  connection either way, so the server of a cross-tier flow can reach its client too;
- Vault and the tiers it serves: it joins each of those tiers' networks.
Even then, a server's addresses on networks its peer does not join stay out of reach.
Each blocked address is also dialled from another container on its own network where there is
one (a control), so a "blocked" result means the segmentation blocked it, not a dead address.
At phase 0 a single flat network lets everything reach everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.model import Service, Tier
from devstack.services.vault import VAULT
from devstack.topology import FLAT_NETWORK, selected_services
from tests.dockerlab import (
    Lab,
    Probe,
    ProbeResult,
    Topology,
    open_lab,
)

pytestmark = [pytest.mark.real]

PROFILES = "profiles=full,reference"
# A few services of every tier: at phase 1 most of these pairs are blocked.
PHASE0_SAMPLE = frozenset({"vault", "postgres", "redis-1", "forgejo", "rust-api", "loki", "vector"})
MAX_REPORTED = 60


@dataclass(frozen=True)
class Expectations:
    """What the catalog allows, in the services' own terms (never read back from the plan)."""

    selected: tuple[Service, ...]

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.selected}

    def declared(self) -> list[tuple[Service, Service, str]]:
        """(client, server, port name) for every flow among the selected services."""
        return [
            (client, SERVICES_BY_NAME[flow.to], flow.port)
            for client in self.selected
            for flow in client.flows
            if flow.to in self.names
        ]

    def vault_tiers(self) -> set[Tier]:
        return {s.tier for s in self.selected for f in s.flows if f.to == VAULT.name} | {Tier.VAULT}

    def may_connect(self, client: Service, server: Service) -> bool:
        if client.tier == server.tier:
            return True
        pairs = {(c.name, s.name) for c, s, _ in self.declared()}
        if (client.name, server.name) in pairs or (server.name, client.name) in pairs:
            return True
        other = client if server.name == VAULT.name else server if client.name == VAULT.name else None
        return other is not None and other.tier in self.vault_tiers()


def _report(results: list[ProbeResult], total: int, seconds: float) -> str:
    failures = [r for r in results if not r.ok]
    lines = [r.describe() for r in failures[:MAX_REPORTED]]
    if len(failures) > MAX_REPORTED:
        lines.append(f"... and {len(failures) - MAX_REPORTED} more")
    return f"{len(failures)} of {total} probes failed ({seconds:.1f}s):\n" + "\n".join(lines)


def _run(lab: Lab, probes: list[Probe]) -> None:
    started = time.monotonic()
    results = lab.run_probes(probes)
    assert len(results) == len(probes)
    assert all(r.ok for r in results), _report(results, len(probes), time.monotonic() - started)


def _port_probes(lab: Lab, client: str, server: str, target: str, *, expect: bool, why: str) -> list[Probe]:
    ports = lab.topology.container(server).ports
    return [Probe(client, server, target, port.container, port.name, expect, why) for port in ports]


def test_phase0_one_flat_network_lets_everything_reach_everything(busybox_image: str) -> None:
    with open_lab(busybox_image, "phase=0", PROFILES, services=PHASE0_SAMPLE) as lab:
        topology = lab.topology
        assert [n.name for n in topology.networks] == [FLAT_NETWORK]
        assert {a.network for c in topology.containers for a in c.attachments} == {FLAT_NETWORK}
        assert not lab.address_mismatches()
        probes = [
            probe
            for client in sorted(PHASE0_SAMPLE)
            for server in sorted(PHASE0_SAMPLE - {client})
            for probe in _port_probes(lab, client, server, server, expect=True, why="flat network")
        ]
        _run(lab, probes)
    assert lab.leftovers() == ([], [])


def _flow_probes(lab: Lab, expected: Expectations) -> list[Probe]:
    probes = []
    for client, server, port_name in expected.declared():
        ports = {p.name: p for p in lab.topology.container(server.name).ports}
        assert port_name in ports, f"{client.name} -> {server.name}:{port_name}: that port is off in this phase"
        port = ports[port_name]
        probes.append(Probe(client.name, server.name, server.name, port.container, port.name, True, "declared"))
    return probes


def _blocked_probes(lab: Lab, expected: Expectations) -> tuple[list[Probe], set[tuple[str, str]]]:
    """Between tiers: every port of every address and of the name of each server a client must
    not reach, and of each address of a server it may reach on a network the client does not
    join. Also returns the (server, network) addresses used, for the controls."""
    probes: list[Probe] = []
    used: set[tuple[str, str]] = set()
    for client in expected.selected:
        joined = {a.network for a in lab.topology.container(client.name).attachments}
        for server in expected.selected:
            if server.tier == client.tier:
                continue
            allowed = expected.may_connect(client, server)
            for network, address in sorted(lab.addresses[server.name].items()):
                if allowed and network in joined:
                    continue
                used.add((server.name, network))
                why = f"{'not on ' if allowed else 'blocked, '}{network}"
                probes += _port_probes(lab, client.name, server.name, address, expect=False, why=why)
            if not allowed:
                probes += _port_probes(lab, client.name, server.name, server.name, expect=False, why="blocked, by name")
    return probes, used


def _control_probes(lab: Lab, used: set[tuple[str, str]]) -> list[Probe]:
    """Each blocked address, dialled from another container on its network: it must answer."""
    probes = []
    for server, network in sorted(used):
        witness = next(
            (
                c.service.name
                for c in lab.topology.containers
                if c.service.name != server and network in {a.network for a in c.attachments}
            ),
            None,
        )
        if witness is not None:
            address = lab.addresses[server][network]
            probes += _port_probes(lab, witness, server, address, expect=True, why=f"control, {network}")
    return probes


def _check_plan(topology: Topology) -> Expectations:
    selected = selected_services(topology.settings)
    assert sorted(c.service.name for c in topology.containers) == sorted(s.name for s in selected)
    names = {n.name for n in topology.networks}
    assert {f"dev-{t.value}-network" for t in Tier} <= names
    assert any(name.startswith("dev-link-") for name in names)
    return Expectations(selected)


def test_phase1_segmentation_lets_through_exactly_the_declared_flows(busybox_image: str) -> None:
    # With every switch that adds a client (the database exporters' flows into the data tier).
    with open_lab(busybox_image, "phase=1", PROFILES, "databaseExporters=true") as lab:
        expected = _check_plan(lab.topology)
        assert not lab.address_mismatches()
        flows = _flow_probes(lab, expected)
        blocked, used = _blocked_probes(lab, expected)
        controls = _control_probes(lab, used)
        assert flows
        assert blocked
        _run(lab, flows + blocked + controls)
    assert lab.leftovers() == ([], [])
