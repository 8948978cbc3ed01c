"""The vocabulary a service is described in: ports, volumes, flows, credentials, limits, and
the hooks through which the shared machinery asks a service what is particular to it.

Each service's own module (devstack/services/) describes it in these terms; devstack.catalog
lists them. A hook is an optional field: a service fills in only those it has something to
say for (its TLS switches, its config files, the accounts it hosts, a step after it starts).

Static IPs are stored as a host number inside the service's tier subnet, so moving a subnet
moves its services with it. Flows say which other service (and which of its named ports) a
service talks to; network membership is derived from them, never listed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from devstack.phases import TlsMode

if TYPE_CHECKING:
    from devstack.credentials import ClientAccount
    from devstack.settings import Settings


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
    """CPU, and the service's share of the memory budget (devstack.memory has the rule)."""

    cpus: float
    floor_mb: int  # what the image needs to start: its limit never goes below, its reservation
    weight: int = 0  # its share of what the budget has beyond the floors; 0: the floor alone


@dataclass(frozen=True)
class Flow:
    to: str  # service name
    port: str  # the target's port name


class ClientRole(StrEnum):
    """What a client's own account on a data service may do."""

    APP = "app"  # its own database / key prefix
    MONITOR = "monitor"  # read-only statistics
    AUTH = "auth"  # PgBouncer's auth_query lookup
    # The management identity's accounts (the backups feature), never a container's:
    BACKUP = "backup"  # reads what a consistent dump needs, writes nothing
    RESTORE = "restore"  # loads a dump beside the live data and swaps it in


@dataclass(frozen=True)
class SecretField:
    """One key of the service's own secret at secret/<service>."""

    key: str
    fixed: str | None = None  # a non-secret value kept beside the passwords (a user name); None: generated


class ValueSyntax(StrEnum):
    """How the wrapper writes a secret value into a template's file format (scripts/entrypoint.sh),
    so that no value (a newline, a quote, a comment sign) can add a line or end a string early."""

    LINE = "line"  # as is; a value with a control character is refused
    JSON = "json"  # escaped for inside a JSON string: "{{key}}"
    REDIS = "redis"  # escaped for inside a double-quoted Redis config string: "{{key}}"
    DOUBLED = "doubled"  # inside "...", a quote doubled (PgBouncer's auth_file); control characters refused
    CUTTLEFISH = "cuttlefish"  # a RabbitMQ .conf value (no escapes): only what it keeps as written


@dataclass(frozen=True)
class Template:
    """A file the wrapper renders from the service's secret ({{key}} placeholders)."""

    name: str
    dest: str
    content: str
    syntax: ValueSyntax  # the file's format, for each value written into it


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
    # Why the platform uploads the values as files itself (Pulumi secrets, 0400) instead of the
    # wrapper reading them from Vault: an image with no client that verifies Vault's certificate.
    # None: the wrapper reads them (every other image).
    uploaded_because: str | None = None


@dataclass(frozen=True)
class ConfigFile:
    """A file written into the container; never a secret (those come through the wrapper)."""

    path: str
    content: str


@dataclass(frozen=True)
class ServerTls:
    """What a server's container needs for a TLS mode beyond its certificate files."""

    args: tuple[str, ...] = ()  # appended to the command the container runs
    # Replaces the image's own CMD, for servers with no entrypoint wrapper whose TLS switches are
    # command-line flags (the image's default arguments have to be restated with them).
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)  # extra config files to upload
    healthcheck: Healthcheck | None = None  # a probe that still works in this mode


@dataclass(frozen=True)
class TlsSupport:
    """A service that gets a certificate (devstack.tls: the chain, the names, the files)."""

    owner: int  # the uid its server process runs as: it must read the key, and nobody else
    # What the server needs in a TLS mode (called in every mode, off included, once it has a
    # certificate); None: the certificate files alone (its switches are in its config files).
    settings: Callable[[Service, TlsMode], ServerTls] | None = None
    combined_pem: str | None = None  # a file name, for a server that wants chain and key in one file


@dataclass(frozen=True)
class ConfigContext:
    """What a service's config files may depend on."""

    settings: Settings
    selected: tuple[Service, ...]  # the services that run
    tls: TlsMode  # the service's own TLS mode
    memory_mb: int = 0  # the service's own memory limit (devstack.memory)

    @property
    def tuned(self) -> bool:
        """Settings derived from the limit (the tuning feature), not the image's defaults."""
        return self.settings.features.tuning


@dataclass(frozen=True)
class Tuning:
    """A server's settings derived from its own memory limit (the tuning feature)."""

    args: tuple[str, ...] = ()  # appended to the command its container runs
    caches: Mapping[str, str] = field(default_factory=dict)  # setting -> value, for `tools.plan budget`


@dataclass(frozen=True)
class Grant:
    """A capability the strict end state adds back after dropping all, and why the image needs it."""

    capability: str  # without the CAP_ prefix, e.g. CHOWN
    reason: str


@dataclass(frozen=True)
class Writable:
    """A path the server writes, a tmpfs once the root filesystem is read-only."""

    path: str
    reason: str
    size_mb: int = 16


DEFAULT_PIDS = 256  # processes and threads: far above what a single server here starts


@dataclass(frozen=True)
class Hardening:
    """What the image tolerates under the strict end state (devstack.hardening): every capability
    is dropped and no-new-privileges is always on; these are the exceptions, each with its reason."""

    # uid:gid it runs as; None only with root_reason, for an image that cannot start otherwise.
    user: str | None
    root_reason: str | None = None
    capabilities: tuple[Grant, ...] = ()
    writable: tuple[Writable, ...] = ()  # tmpfs over a read-only root filesystem
    # Why the image needs a writable root filesystem whatever the delivery of its files; None: it does not.
    writable_root_reason: str | None = None
    pids: int = DEFAULT_PIDS
    pids_reason: str | None = None  # why more than DEFAULT_PIDS
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # e.g. caches moved to /tmp

    @property
    def uid(self) -> int | None:
        return None if self.user is None else int(self.user.split(":", 1)[0])


ConfigFiles = Callable[["Service", ConfigContext], tuple[ConfigFile, ...]]
# A client's account, with its password: what a server's account script is made from.
Login = tuple["ClientAccount", str]


@dataclass(frozen=True)
class SetupScript:
    """How the accounts are created once the server is healthy: a script on the stdin of the
    server's own CLI in its container (`docker exec -i`), so no password is an argument."""

    cli: tuple[str, ...]  # what runs in the container, reading the script on stdin; no secret in it
    script: Callable[[Sequence[Login], Mapping[str, str]], str]  # logins, admin values -> the script
    admin_keys: tuple[str, ...] = ()  # keys of the server's own secret the script needs
    # Whom the client runs as in the container (`docker exec -u`); None: the image's default.
    user: str | None = None


@dataclass(frozen=True)
class AccountServer:
    """A data service on which each client gets its own account (devstack.credentials)."""

    system: str  # names the client's keys: secret/<client> <system>_user and <system>_password
    port: str  # a flow to this port makes the client an account holder
    setup: SetupScript | None = None
    # Or: the users come as a file in the server's own secret (key USERS_FILE_KEY), rendered
    # from its admin password and the logins.
    users_file: Callable[[str, Sequence[Login]], str] | None = None
    # The key of the server's own secret whose value users_file gets first (Redis: the cluster's
    # admin password; PgBouncer: its auth_user's password, the file's first line).
    admin_key: str = "password"
    every_node: bool = False  # an app client is redirected to every server of this system
    # The management accounts this system hosts from the backups feature on (devstack.credentials).
    backup_roles: tuple[ClientRole, ...] = ()


@dataclass(frozen=True)
class PostStart:
    """A setup step run in the container once it is healthy (`docker exec -i ... sh -s`)."""

    name: str  # the command's resource name
    script: Path


@dataclass(frozen=True)
class ClusterMember:
    """A node of the cluster formed once all its members run (components/redis_cluster)."""

    plain_port: str  # the port the cluster is formed through
    tls_port: str  # ... once TLS is required


@dataclass(frozen=True)
class Metrics:
    """Where Prometheus scrapes the service (devstack.monitoring), and the metric names found
    there that alert rules and dashboards may use: a reviewed list, each module saying where
    its names come from (a rule on a name no scraped service lists fails a test)."""

    port: str  # the port its metrics are served on
    path: str = "/metrics"
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The port once TLS is required, when the plain one closes (the APIs' https); None: the same.
    required_port: str | None = None
    exported: tuple[str, ...] = ()
    # Its Grafana dashboard: a JSON file in devstack/services/dashboards/ (devstack.provisioning).
    dashboard: str | None = None

    def port_in(self, mode: TlsMode) -> str:
        return self.required_port if mode is TlsMode.REQUIRED and self.required_port else self.port


@dataclass(frozen=True)
class Datasource:
    """A Grafana data source the service is (devstack.provisioning)."""

    name: str
    type: str  # Grafana's plugin id
    port: str
    json_data: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Part:
    """One dump of a store: a database, a node's RDB, the definitions."""

    name: str  # the file name in the backup (restic's --stdin-filename), unique in the store
    target: str  # what the store's scripts act on (a database name; the node itself: "")


@dataclass(frozen=True)
class Pause:
    """A store whose files are only consistent while its writers stand still (Forgejo's volume
    beside its database): tools.backup runs `stop` before it dumps the store's own parts and
    the other stores' parts listed in `with_parts` (so they are taken at one instant), and
    `resume` after, whatever happened; the same around every swap of a restore. Both scripts
    run where the store's server is and read (and drop) a password line like the others."""

    stop: str  # pauses the writers; prints nothing
    resume: str  # lets them go on; fails (the backup then counts for nothing) if the pause ran out
    with_parts: tuple[tuple[str, str], ...] = ()  # (store, part target) dumped inside the pause


@dataclass(frozen=True)
class Backup:
    """How tools.backup dumps, checks and restores a store: shell scripts (`sh -c`) that run
    where the server is (`docker exec -i <container>` for users, a local process in the real
    tests) and take the account's password as the first line of their stdin, never argv or env.

    Every script reaches the server the way a process in its container does; the tests give
    them the loopback server's address through the environment (PGHOST, MYSQL_UNIX_PORT,
    REDIS_PORT), which the scripts read as their defaults.
    """

    parts: str  # as backup: prints one `name<TAB>target` line per part
    dump: Callable[[Part], str]  # as backup: the part's dump on stdout
    # as backup (live) or restore (side): one `table<TAB>rows<TAB>checksum` line per table
    fingerprint: Callable[[Part, bool], str]
    restore: Callable[[Part], str]  # as restore: the password line, then the dump, into the side copy
    swap: Callable[[Part], str]  # as restore: the verified side copy replaces the live one
    discard: Callable[[Part], str]  # as restore: drop the side copy (it failed verification)
    version: str = "true"  # prints the dump tool's version (for the manifest); no password line
    pause: Pause | None = None  # None: its dumps are consistent by themselves (a transaction, an RDB)
    # What the store's own tools say when its disk is full, beyond the system's "No space left on
    # device" (MariaDB: "The table ... is full").
    full_disk_signs: tuple[str, ...] = ()
    # A store that must never fill its disk (PostgreSQL stops when a checkpoint cannot write):
    # `size` (as backup) prints the bytes a part takes on the server, recorded by create; `free`
    # (as restore) prints the KiB free where it keeps its data (df's unit). Before loading any side copy,
    # verify and restore check that the parts' sizes and reserve_mb fit. None: not checked.
    size: Callable[[Part], str] | None = None
    free: str | None = None
    reserve_mb: int = 0


USERS_FILE_KEY = "users_acl"  # AccountServer.users_file's key in the server's own secret


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
    # Least privilege beyond Docker's defaults, for a service that needs no more:
    user: str | None = None  # uid:gid it runs as; None: the image's own USER
    confined: bool = False  # no capability, a read-only root filesystem, no privilege gain by setuid
    host_cgroups: bool = False  # the host's cgroup tree (Docker mounts it read-only) instead of its own
    # The strict end state's exceptions for this image (the hardening feature); None: not described
    # yet, which the plan refuses once the feature is on.
    hardening: Hardening | None = None
    credentials: Credentials | None = None
    # The image's only HTTPS client that verifies certificates is Alpine's busybox wget (through
    # ssl_client), which trusts the fixed bundle /etc/ssl/cert.pem and takes no CA option: from
    # dual mode on (the wrapper reaches Vault over HTTPS) the stack's CA is put there. Docker's
    # upload writes through Alpine's symlink, so the public bundle behind it becomes the CA too
    # (tests/test_system_bundle_docker):
    # none of these images reaches a public TLS server.
    system_ca_bundle: bool = False
    client_role: ClientRole = ClientRole.APP
    app: str | None = None  # a source file from apps/, uploaded to /devstack/app/
    # Hooks: what only this service knows, for the shared machinery to ask.
    tls: TlsSupport | None = None  # None: no certificate, no TLS
    config_files: ConfigFiles | None = None
    serves: AccountServer | None = None
    post_start: PostStart | None = None
    cluster: ClusterMember | None = None
    tuning: Callable[[Service, int], Tuning] | None = None  # its settings from its limit in MiB
    switch: str | None = None  # a config key (a boolean) without which it never runs, e.g. redisReplicas
    feature: str | None = None  # a phase feature (devstack.phases.Features) without which it never runs
    metrics: Metrics | None = None  # None: nothing to scrape
    # Scrapes every service's metrics (devstack.catalog adds a flow to each metrics port).
    scrapes_metrics: bool = False
    alerts_port: str | None = None  # takes Prometheus's alerts on this port (Alertmanager)
    alert_inbox: str | None = None  # takes Alertmanager's notifications (a webhook) on this port
    datasource: Datasource | None = None  # Grafana reads it
    backup: Backup | None = None  # how tools.backup dumps, checks and restores its data
    # Joins every tier whose services talk to it (Vault), instead of clients linking to its tier.
    joins_client_tiers: bool = False

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
