"""The platform's topology as a Mermaid flowchart, read from the plan's own resources: each
network the plan creates, the containers on it with their addresses, the link networks between
tiers, the containers that sit in several tiers (Vault) and the ports published on the host.

The picture is drawn from what `pulumi up` would receive (the networks' subnets, each
container's `networksAdvanced` and `ports`), not from the catalog, so it shows the plan as it is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from tools.engine import PlanRun, unwrap

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
TIER_LABEL = "devstack.tier"


@dataclass(frozen=True)
class Attachment:
    network: str  # the Docker network's name
    address: str | None  # a static address; None: Docker picks one (link networks)


@dataclass(frozen=True)
class Node:
    container: str  # dev-<service>
    tier: str
    attachments: tuple[Attachment, ...]  # the first one is the container's home network
    published: tuple[str, ...]  # "127.0.0.1:5432", in the plan's order

    @property
    def home(self) -> str:
        return self.attachments[0].network


@dataclass(frozen=True)
class Net:
    name: str
    subnet: str


@dataclass(frozen=True)
class Topology:
    networks: tuple[Net, ...]
    nodes: tuple[Node, ...]

    def homed_on(self, network: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.home == network)

    def visiting(self, network: str) -> tuple[tuple[Node, Attachment], ...]:
        """Containers with a static address on a network that is not their home (multi-homing)."""
        return tuple(
            (n, a) for n in self.nodes for a in n.attachments[1:] if a.network == network and a.address is not None
        )

    def members(self, network: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if any(a.network == network for a in n.attachments))


def _labels(inputs: dict[str, Any]) -> dict[str, str]:
    return {str(item["label"]): str(item["value"]) for item in inputs.get("labels", [])}


def topology(run: PlanRun) -> Topology:
    networks = []
    for record in run.by_type(NETWORK):
        inputs = unwrap(record.inputs)
        networks.append(Net(inputs["name"], inputs["ipamConfigs"][0]["subnet"]))
    nodes = []
    for record in run.by_type(CONTAINER):
        inputs = unwrap(record.inputs)
        attachments = tuple(Attachment(a["name"], a.get("ipv4Address")) for a in inputs.get("networksAdvanced", []))
        published = tuple(f"{p['ip']}:{p['external']}" for p in inputs.get("ports", []))
        nodes.append(Node(inputs["name"], _labels(inputs).get(TIER_LABEL, "?"), attachments, published))
    # In address order: the Vault tier, data, app, observability, then the link networks.
    networks.sort(key=lambda net: ipaddress.ip_network(net.subnet))
    return Topology(tuple(networks), tuple(nodes))


def _id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", name)


def _node_label(node: Node, attachment: Attachment) -> str:
    lines = [node.container]
    if attachment.address:
        lines.append(attachment.address)
    if node.published:
        lines.append("host " + ", ".join(node.published))
    return "<br/>".join(lines)


def mermaid(topo: Topology) -> str:
    """A flowchart: one box per network that is some container's home (a tier, or the flat
    network), a hexagon per link network joined to its members, and a copy of a multi-homed
    container in each further tier it joins, dotted to the container itself."""
    lines = ["flowchart LR"]
    links: list[Net] = []
    for net in topo.networks:
        homed = topo.homed_on(net.name)
        if not homed:
            links.append(net)
            continue
        tiers = sorted({n.tier for n in homed})
        kind = f"{tiers[0]} tier" if len(tiers) == 1 else "every tier"
        lines.append(f'  subgraph {_id("net_", net.name)}["{net.name} · {net.subnet} · {kind}"]')
        for node in homed:
            lines.append(f'    {_id("c_", node.container)}["{_node_label(node, node.attachments[0])}"]')
        for node, attachment in topo.visiting(net.name):
            copy = _id("c_", f"{node.container}@{net.name}")
            lines.append(f'    {copy}["{node.container}<br/>{attachment.address}"]')
        lines.append("  end")
    for net in topo.networks:
        for node, _attachment in topo.visiting(net.name):
            copy = _id("c_", f"{node.container}@{net.name}")
            lines.append(f"  {copy} -.-|same container| {_id('c_', node.container)}")
    for net in links:
        link = _id("l_", net.name)
        lines.append(f'  {link}{{{{"{net.name}<br/>{net.subnet}"}}}}')
        for node in topo.members(net.name):
            lines.append(f"  {link} --- {_id('c_', node.container)}")
    return "\n".join(lines)
