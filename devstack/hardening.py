"""Least privilege in each container: the strict end state's first item (the hardening feature).

With the feature on, every container gets no-new-privileges, every capability dropped (and only
those its catalog entry grants, with their reasons, added back; never NET_RAW), the non-root user
its catalog entry names, a PID limit, and a read-only root filesystem with a tmpfs for each path
the server writes, wherever that is possible. The exceptions are data: a service's own module
says why its image needs root or a writable root, and `exceptions` lists them all for the
CrossGuard pack, so the plan and the pack agree by construction.

A read-only root is impossible for a container that gets files uploaded: the Docker provider
copies every upload through the container's root directory (the archive API with path=/, before
the container starts), and the engine refuses any copy there once the root is read-only
("container rootfs is marked read-only"; tests/test_hardening_docker.py shows it on the engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from devstack.model import Hardening, Service
from devstack.phases import TlsMode
from devstack.services.vault import VAULT

NO_NEW_PRIVILEGES = "no-new-privileges:true"
# Docker lets every group open ICMP datagram sockets ("ping sockets") in a container, which send
# echo requests without NET_RAW; this empty range (first above last) lets no group.
NO_PING_SOCKETS = MappingProxyType({"net.ipv4.ping_group_range": "1 0"})
FORBIDDEN = frozenset({"NET_RAW", "ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "NET_ADMIN"})
UPLOADS_REASON = (
    "the Docker provider uploads its files through the container's root directory, which the "
    "engine refuses on a read-only root filesystem"
)
READ_ONLY = "readOnly"  # the CrossGuard rule's names for the two excusable items
USER = "user"
# The PID limit as a container label: the provider has no pids_limit input, so the limit is set by
# `docker update --pids-limit` once the container exists (components/service), and the label lets
# the policy pack check both agree.
PIDS_LABEL = "devstack.pids-limit"


@dataclass(frozen=True)
class ContainerHardening:
    """What ServiceContainer sets on the container (None / empty: Docker's default)."""

    user: str | None = None
    adds: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    read_only: bool = False
    tmpfs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    security_opts: tuple[str, ...] = ()
    pids_limit: int | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sysctls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def uid(self) -> int | None:
        return None if self.user is None else int(self.user.split(":", 1)[0])


def catalog_entry(service: Service) -> Hardening:
    """The service's hardening entry, checked: a reason for every exception, no forbidden grant."""
    entry = service.hardening
    if entry is None:
        raise ValueError(f"{service.name} has no hardening entry in its service module")
    if entry.user is None and not entry.root_reason:
        raise ValueError(f"{service.name} runs as root under hardening without a root_reason")
    if entry.user is not None and entry.uid == 0:
        raise ValueError(f"{service.name}: hardening user {entry.user} is root; say so with user=None and a reason")
    for grant in entry.capabilities:
        if grant.capability.upper().removeprefix("CAP_") in FORBIDDEN:
            raise ValueError(f"{service.name} may not be granted {grant.capability}")
        if not grant.reason:
            raise ValueError(f"{service.name}: capability {grant.capability} has no reason")
    if entry.pids <= 0 or (entry.pids > 256 and not entry.pids_reason):
        raise ValueError(f"{service.name}: a PID limit above the default needs a reason")
    return entry


def _tmpfs_options(size_mb: int, uid: int | None) -> str:
    owner = f",uid={uid}" if uid is not None else ""
    return f"rw,noexec,nosuid,nodev,size={size_mb}m,mode=0700{owner}"


def container_hardening(service: Service, on: bool, uploads: bool) -> ContainerHardening:
    """The feature off: Docker's defaults, but for a service confined at every phase (cAdvisor)."""
    if not on:
        confined = service.confined
        return ContainerHardening(
            user=service.user,
            adds=service.capabilities,
            drops=("ALL",) if confined else (),
            read_only=confined,
            security_opts=(NO_NEW_PRIVILEGES,) if confined else (),
        )
    entry = catalog_entry(service)
    read_only = not uploads and entry.writable_root_reason is None
    uid = entry.uid if entry.user is not None else None
    tmpfs = {w.path: _tmpfs_options(w.size_mb, uid) for w in entry.writable} if read_only else {}
    return ContainerHardening(
        user=entry.user,
        adds=tuple(sorted(g.capability.upper().removeprefix("CAP_") for g in entry.capabilities)),
        drops=("ALL",),
        read_only=read_only,
        tmpfs=MappingProxyType(tmpfs),
        security_opts=(NO_NEW_PRIVILEGES,),
        pids_limit=entry.pids,
        env=entry.env,
        sysctls=NO_PING_SOCKETS,
    )


def gets_uploads(service: Service, tls: TlsMode, secret: bool) -> bool:
    """Whether the platform uploads any file into the service's container: the entrypoint wrapper
    (a secret to deliver), its config files or app, certificates or the CA once TLS is on (a
    server, or a client of one), Vault's own config."""
    # Vault's own config file is uploaded by the platform (components/platform), not by a hook.
    if secret or service.config_files is not None or service.app is not None or service is VAULT:
        return True
    return tls is not TlsMode.OFF and (service.tls is not None or bool(service.flows))


def exceptions(services: tuple[Service, ...], tls: TlsMode, secrets: frozenset[str]) -> dict[str, dict[str, str]]:
    """Service -> excused item (user, readOnly) -> why: the CrossGuard rule's exceptions."""
    result: dict[str, dict[str, str]] = {}
    for service in services:
        entry = catalog_entry(service)
        excused: dict[str, str] = {}
        if entry.user is None and entry.root_reason:
            excused[USER] = entry.root_reason
        if entry.writable_root_reason:
            excused[READ_ONLY] = entry.writable_root_reason
        elif gets_uploads(service, tls, service.name in secrets):
            excused[READ_ONLY] = UPLOADS_REASON
        if excused:
            result[service.name] = excused
    return result
