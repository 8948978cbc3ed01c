"""The Docker networks of the platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from devstack.topology import NetworkSpec


@dataclass(frozen=True)
class NetworkTopologyArgs:
    networks: tuple[NetworkSpec, ...]
    labels: dict[str, str]


def _after(first: docker.Network, name: str) -> pulumi.Output[str]:
    """The network's own name, as a value that comes from the first network: the engine then
    counts this network among the first one's dependents that a replacement of the first one
    deletes beforehand. So when the first network is replaced by the flat network, whose subnet
    contains every tier and link network's (segmented phases -> phase 0), these networks and
    their containers are gone before the flat network is created, in one `pulumi up`, instead of
    being removed at the end of the update, after Docker has refused the overlapping flat
    network. The name itself never changes."""
    return first.name.apply(lambda _first: name)


class NetworkTopology(pulumi.ComponentResource):
    """Bridge networks with fixed subnets, so static container addresses stay valid."""

    networks: dict[str, docker.Network]

    def __init__(self, name: str, args: NetworkTopologyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:network:NetworkTopology", name, None, opts)
        self.networks = {}
        first: docker.Network | None = None
        for spec in args.networks:
            self.networks[spec.key] = docker.Network(
                spec.key,
                name=spec.docker_name if first is None else _after(first, spec.docker_name),
                driver="bridge",
                ipam_configs=[
                    docker.NetworkIpamConfigArgs(subnet=spec.subnet, gateway=spec.gateway, ip_range=spec.ip_range)
                ],
                labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
                # Fixed names and subnets: the old network must go before its successor exists,
                # and the others wait for the first one (see devstack.topology.tier_key).
                opts=pulumi.ResourceOptions(
                    parent=self, delete_before_replace=True, depends_on=[first] if first else []
                ),
            )
            first = first or self.networks[spec.key]
        self.names = {key: network.name for key, network in self.networks.items()}
        self.register_outputs({"networks": self.names})
