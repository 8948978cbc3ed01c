"""The top-level component: the whole platform for one Settings object."""

from __future__ import annotations

import pulumi

from components.network import NetworkTopology, NetworkTopologyArgs
from components.service import ServiceContainer, ServiceContainerArgs
from components.volumes import DataVolumes, DataVolumesArgs
from devstack.catalog import SERVICES, Service
from devstack.settings import Settings
from devstack.topology import (
    attachments,
    networks,
    published_ports,
    selected_services,
    start_dependencies,
)


def _start_order(selected: tuple[Service, ...]) -> list[Service]:
    """Dependencies before dependants (the catalog lists them in a reader's order)."""
    done: dict[str, Service] = {}

    def visit(service: Service) -> None:
        if service.name in done:
            return
        for dependency in start_dependencies(selected, service):
            visit(next(s for s in selected if s.name == dependency))
        done[service.name] = service

    for service in selected:
        visit(service)
    return list(done.values())


class Platform(pulumi.ComponentResource):
    services: dict[str, ServiceContainer]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:platform:Platform", name, None, opts)
        labels = {"devstack.project": settings.project, "devstack.stack": settings.stack}
        child = pulumi.ResourceOptions(parent=self)

        self.topology = NetworkTopology("networks", NetworkTopologyArgs(networks(settings), labels), opts=child)
        volume_names = tuple(dict.fromkeys(m.volume for s in SERVICES for m in s.volumes))
        self.data = DataVolumes("volumes", DataVolumesArgs(volume_names, labels), opts=child)

        selected = selected_services(settings)
        self.services = {}
        for service in _start_order(selected):
            depends = tuple(self.services[d].container for d in start_dependencies(selected, service))
            self.services[service.name] = ServiceContainer(
                service.name,
                ServiceContainerArgs(
                    service=service,
                    image=settings.image(service),
                    attachments=attachments(settings, service),
                    networks=self.topology.networks,
                    published=published_ports(settings, service),
                    volumes=self.data.volumes,
                    labels={**labels, "devstack.service": service.name, "devstack.tier": service.tier.value},
                    depends_on=depends,
                ),
                opts=child,
            )

        self.endpoints = {
            service.name: {
                "container": service.container_name,
                "address": settings.static_ip(service),
                "ports": {p.name: f"{p.bind_address}:{p.host}" for p in published_ports(settings, service)},
            }
            for service in selected
        }
        self.register_outputs({"endpoints": self.endpoints, "networks": self.topology.names})
