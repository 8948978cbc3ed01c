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


class NetworkTopology(pulumi.ComponentResource):
    """Bridge networks with fixed subnets, so static container addresses stay valid."""

    networks: dict[str, docker.Network]

    def __init__(self, name: str, args: NetworkTopologyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:network:NetworkTopology", name, None, opts)
        self.networks = {}
        first: list[pulumi.Resource] = []
        for spec in args.networks:
            self.networks[spec.key] = docker.Network(
                spec.key,
                name=spec.docker_name,
                driver="bridge",
                ipam_configs=[
                    docker.NetworkIpamConfigArgs(subnet=spec.subnet, gateway=spec.gateway, ip_range=spec.ip_range)
                ],
                labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
                # Fixed names and subnets: the old network must go before its successor exists,
                # and the others wait for the first one (see devstack.topology.tier_key).
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=first),
            )
            first = first or [self.networks[spec.key]]
        self.names = {key: network.name for key, network in self.networks.items()}
        self.register_outputs({"networks": self.names})
