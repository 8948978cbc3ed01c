"""One service container: its pinned image, networks, ports, volumes, health and limits."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from devstack.hardening import PIDS_LABEL, ContainerHardening
from devstack.memory import Allocation
from devstack.model import Healthcheck, Service
from devstack.topology import Attachment, PublishedPort

# `labels`: each log line names its container's devstack.service label, which Vector reads from
# the log files (it has no Docker socket to ask).
LOG_OPTIONS = {"max-size": "10m", "max-file": "3", "labels": "devstack.service"}


@dataclass(frozen=True)
class Upload:
    path: str
    content: pulumi.Input[str]  # may be a secret Output (the phase-0 token file)
    permissions: str = "0444"
    owner: int | None = None


@dataclass(frozen=True)
class ServiceContainerArgs:
    service: Service
    image: str  # repository:tag
    attachments: tuple[Attachment, ...]
    networks: Mapping[str, docker.Network]
    published: tuple[PublishedPort, ...]
    volumes: Mapping[str, docker.Volume]
    labels: Mapping[str, str]
    memory: Allocation  # its limit, from the budget (devstack.memory)
    env: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()  # empty: the image's own
    command: tuple[str, ...] = ()  # empty: the catalog's command, else the image's own
    uploads: tuple[Upload, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None  # empty: the catalog's
    # Start only after these (each waited for until healthy, like compose's service_healthy).
    depends_on: tuple[pulumi.Resource, ...] = ()
    wait_healthy: bool = True
    hardening: ContainerHardening = field(default_factory=ContainerHardening)  # devstack.hardening


def _healthcheck(check: Healthcheck) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=list(check.test),
        interval=check.interval,
        timeout=check.timeout,
        retries=check.retries,
        start_period=check.start_period,
        start_interval="2s",  # probe fast while starting, so `pulumi up` is not held back
    )


def _networks(args: ServiceContainerArgs) -> list[docker.ContainerNetworksAdvancedArgs]:
    return [
        docker.ContainerNetworksAdvancedArgs(
            name=args.networks[a.network].name,
            ipv4_address=a.ipv4_address,
            aliases=list(a.aliases),
        )
        for a in args.attachments
    ]


def _mounts(args: ServiceContainerArgs) -> list[docker.ContainerVolumeArgs]:
    mounts = [
        docker.ContainerVolumeArgs(volume_name=args.volumes[m.volume].name, container_path=m.path)
        for m in args.service.volumes
    ]
    mounts += [
        docker.ContainerVolumeArgs(host_path=b.host_path, container_path=b.path, read_only=True)
        for b in args.service.binds
    ]
    return mounts


def _env(env: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(env.items())]


def _uploads(uploads: tuple[Upload, ...]) -> list[docker.ContainerUploadArgs]:
    return [
        docker.ContainerUploadArgs(
            file=u.path,
            content=u.content,
            permissions=u.permissions,
            owner=None if u.owner is None else str(u.owner),
        )
        for u in sorted(uploads, key=lambda u: u.path)
    ]


def _labels(args: ServiceContainerArgs) -> dict[str, str]:
    """The container's labels; its PID limit among them, for the policy pack to check against."""
    limit = args.hardening.pids_limit
    return {**args.labels, **({PIDS_LABEL: str(limit)} if limit is not None else {})}


def pids_limit_command(container: str, limit: int) -> str:
    """The policy pack looks for exactly this line (policies/crossguard/validators.pids_command)."""
    return shlex.join(["docker", "update", "--pids-limit", str(limit), container])


class ServiceContainer(pulumi.ComponentResource):
    container: docker.Container

    def __init__(
        self,
        name: str,
        args: ServiceContainerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("devstack:service:ServiceContainer", name, None, opts)
        service = args.service
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(
            f"{name}-image",
            name=args.image,
            keep_locally=True,  # other containers (and the user) may share the image
            opts=child,
        )
        hardening = args.hardening
        capabilities = (
            docker.ContainerCapabilitiesArgs(adds=list(hardening.adds) or None, drops=list(hardening.drops) or None)
            if hardening.adds or hardening.drops
            else None
        )
        ports: Sequence[docker.ContainerPortArgs] = [
            docker.ContainerPortArgs(internal=p.container, external=p.host, ip=p.bind_address, protocol="tcp")
            for p in args.published
        ]
        self.container = docker.Container(
            name,
            name=service.container_name,
            hostname=service.name,
            image=image.image_id,
            restart="unless-stopped",
            networks_advanced=_networks(args),
            ports=ports,
            volumes=_mounts(args),
            envs=_env({**service.env, **hardening.env, **args.env}),
            entrypoints=list(args.entrypoint) or None,
            command=list(args.command or service.command) or None,
            uploads=_uploads(args.uploads) or None,
            tmpfs={**hardening.tmpfs, **args.tmpfs} or None,
            capabilities=capabilities,
            user=hardening.user,
            read_only=hardening.read_only or None,
            security_opts=list(hardening.security_opts) or None,
            sysctls=dict(hardening.sysctls) or None,
            cgroupns_mode="host" if service.host_cgroups else None,
            healthcheck=_healthcheck(args.healthcheck or service.healthcheck),
            # A new limit is an in-place update of the running container (tools/engine/provider_rules).
            memory=args.memory.limit_mb,
            memory_reservation=args.memory.reservation_mb,
            cpus=f"{service.limits.cpus:g}",
            log_driver="json-file",
            log_opts=LOG_OPTIONS,
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(_labels(args).items())],
            must_run=True,
            wait=args.wait_healthy,
            wait_timeout=300,
            # The name, static IPs and host ports are fixed: remove the old container first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=list(args.depends_on)),
        )
        self.container_name = self.container.name
        self.pids_limit: command.local.Command | None = None
        if hardening.pids_limit is not None:
            # The provider has no pids_limit: the engine's own update sets it on the running
            # container, and keeps it across restarts; a new container runs it again.
            self.pids_limit = command.local.Command(
                f"{name}-pids-limit",
                create=pids_limit_command(service.container_name, hardening.pids_limit),
                triggers=[self.container.id],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
            )
        self.register_outputs({"container": self.container.name, "image": args.image})
