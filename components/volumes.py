"""The platform's named volumes: its data, which Pulumi never deletes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker


@dataclass(frozen=True)
class DataVolumesArgs:
    volume_names: tuple[str, ...]  # every stateful volume in the catalog
    labels: dict[str, str]


class DataVolumes(pulumi.ComponentResource):
    """Every catalog volume exists whatever the profile or phase, so switching either never
    touches data; `protect` stops deletion in Pulumi and `retain_on_delete` keeps the Docker
    volume even if a user unprotects and destroys."""

    volumes: dict[str, docker.Volume]

    def __init__(self, name: str, args: DataVolumesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:volumes:DataVolumes", name, None, opts)
        self.volumes = {
            volume: docker.Volume(
                volume,
                name=f"dev-{volume}",
                labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
            for volume in args.volume_names
        }
        self.names = {key: volume.name for key, volume in self.volumes.items()}
        self.register_outputs({"volumes": self.names})
