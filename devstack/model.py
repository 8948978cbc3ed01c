"""The vocabulary a service is described in: ports, volumes, flows, credentials, limits.

Each service's own module (devstack/services/) describes it in these terms; devstack.catalog
lists them. Static IPs are stored as a host number inside the service's tier subnet, so moving
a subnet moves its services with it. Flows say which other service (and which of its named
ports) a service talks to; network membership is derived from them, never listed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from devstack.phases import TlsMode


class Tier(StrEnum):
    VAULT = "vault"
    DATA = "data"
    APP = "app"
    OBSERVABILITY = "observability"


class Profile(StrEnum):
    MINIMAL = "minimal"
    STANDARD = "standard"
    FULL = "full"
    REFERENCE = "reference"


@dataclass(frozen=True)
class Port:
    name: str
    container: int
    host: int | None = None  # None: reachable only from other containers
    open_in: frozenset[TlsMode] = frozenset(TlsMode)  # the TLS modes the server listens on it in


# A port's life through the TLS modes.
TLS_PORT = frozenset({TlsMode.DUAL, TlsMode.REQUIRED})  # exists only while the TLS feature is on
PLAIN_BESIDE_TLS = frozenset({TlsMode.OFF, TlsMode.DUAL})  # plaintext: closed once TLS is required
# TLS beside plaintext while clients migrate; closed once required, when the main port speaks TLS.
MIGRATION_PORT = frozenset({TlsMode.DUAL})


@dataclass(frozen=True)
class VolumeMount:
    volume: str  # Docker volume name suffix: dev-<volume>
    path: str


@dataclass(frozen=True)
class HostBind:
    """A read-only view of a host path (observability agents only)."""

    host_path: str
    path: str


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval: str = "30s"
    timeout: str = "10s"
    retries: int = 3
    start_period: str = "30s"


@dataclass(frozen=True)
class Limits:
    cpus: float
    memory_mb: int

    @property
    def reservation_mb(self) -> int:
        # A quarter of the limit keeps a laptop's memory free for what is actually busy.
        return max(self.memory_mb // 4, 16)


@dataclass(frozen=True)
class Flow:
    to: str  # service name
    port: str  # the target's port name


class ClientRole(StrEnum):
    """What a client's own account on a data service may do."""

    APP = "app"  # its own database / key prefix
    MONITOR = "monitor"  # read-only statistics
    AUTH = "auth"  # PgBouncer's auth_query lookup


@dataclass(frozen=True)
class SecretField:
    """One key of the service's own secret at secret/<service>."""

    key: str
    fixed: str | None = None  # a non-secret value kept beside the passwords (a user name); None: generated


@dataclass(frozen=True)
class Template:
    """A file the wrapper renders from the service's secret ({{key}} placeholders)."""

    name: str
    dest: str
    content: str


SECRETS_DIR = "/run/devstack"  # a tmpfs: secret files never touch a disk
TEMPLATE_DIR = "/devstack/templates"  # the wrapper's templates, rendered into SECRETS_DIR
APP_DIR = "/devstack/app"  # where Service.app is uploaded


@dataclass(frozen=True)
class Credentials:
    """How the entrypoint wrapper hands the service its secret: files, never env or argv."""

    entrypoint: tuple[str, ...]  # the image's own ENTRYPOINT + CMD, exec'd by the wrapper
    fields: tuple[SecretField, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # points at the files
    templates: tuple[Template, ...] = ()
    owner: str | None = None  # user:group the image's process reads the files as
    run_as_uid: int = 0  # the image's USER, which owns the tmpfs
    shared_with: str | None = None  # services of one group share the generated values (a cluster)


@dataclass(frozen=True)
class Service:
    name: str
    image: str  # repository, no tag
    tag: str  # exact version; never "latest"
    tier: Tier
    host_id: int  # last part of the static IP inside the tier subnet
    ports: tuple[Port, ...]
    healthcheck: Healthcheck
    limits: Limits
    profiles: frozenset[Profile]  # empty: always on
    volumes: tuple[VolumeMount, ...] = ()
    binds: tuple[HostBind, ...] = ()
    depends_on: tuple[str, ...] = ()
    flows: tuple[Flow, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    command: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    credentials: Credentials | None = None
    # The image's only HTTPS client that verifies certificates is Alpine's busybox wget (through
    # ssl_client), which trusts the fixed bundle /etc/ssl/cert.pem and takes no CA option: once
    # TLS is required the stack's CA is put there. Docker's upload writes through Alpine's
    # symlink, so the public bundle behind it becomes the CA too (tests/test_system_bundle_docker):
    # none of these images reaches a public TLS server.
    system_ca_bundle: bool = False
    client_role: ClientRole = ClientRole.APP
    app: str | None = None  # a source file from apps/, uploaded to /devstack/app/

    @property
    def container_name(self) -> str:
        return f"dev-{self.name}"

    def port(self, name: str) -> Port:
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(f"{self.name} has no port named {name!r}")


MIN_UP = frozenset({Profile.MINIMAL, Profile.STANDARD, Profile.FULL})
STD_UP = frozenset({Profile.STANDARD, Profile.FULL})
FULL = frozenset({Profile.FULL})
REF = frozenset({Profile.REFERENCE})
ALWAYS: frozenset[Profile] = frozenset()

VAULT_FLOW = Flow("vault", "api")  # every client of Vault: its own secret


def account_user(client: str) -> str:
    """A client's own user name on every data service it uses."""
    return client.replace("-", "_")


def secret_files(**env_to_key: str) -> Mapping[str, str]:
    """Image variables that take a file path (the *_FILE convention) -> the wrapper's file."""
    return MappingProxyType({env: f"{SECRETS_DIR}/{key}" for env, key in env_to_key.items()})


def shell(script: str) -> tuple[str, ...]:
    return ("CMD-SHELL", script)


def http_probe(url: str) -> tuple[str, ...]:
    # busybox wget ships in every alpine- and busybox-based image used here
    return shell(f"wget -q -O /dev/null {url} || exit 1")
