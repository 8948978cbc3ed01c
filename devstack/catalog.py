"""The platform's 23 services as plain data. Adding a service is one entry in SERVICES.

Static IPs are stored as a host number inside the service's tier subnet, so moving a subnet
moves its services with it. Flows say which other service (and which of its named ports) a
service talks to; network membership is derived from them, never listed by hand.
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
    # Least privilege beyond Docker's defaults, for a service that needs no more:
    user: str | None = None  # uid:gid it runs as; None: the image's own USER
    confined: bool = False  # no capability, a read-only root filesystem, no privilege gain by setuid
    host_cgroups: bool = False  # the host's cgroup tree (Docker mounts it read-only) instead of its own
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


_MIN_UP = frozenset({Profile.MINIMAL, Profile.STANDARD, Profile.FULL})
_STD_UP = frozenset({Profile.STANDARD, Profile.FULL})
_FULL = frozenset({Profile.FULL})
_REF = frozenset({Profile.REFERENCE})
_ALWAYS: frozenset[Profile] = frozenset()

_VAULT = Flow("vault", "api")


def account_user(client: str) -> str:
    """A client's own user name on every data service it uses."""
    return client.replace("-", "_")


def _files(**env_to_key: str) -> Mapping[str, str]:
    """Image variables that take a file path (the *_FILE convention) -> the wrapper's file."""
    return MappingProxyType({env: f"{SECRETS_DIR}/{key}" for env, key in env_to_key.items()})


def _shell(script: str) -> tuple[str, ...]:
    return ("CMD-SHELL", script)


def _http_probe(url: str) -> tuple[str, ...]:
    # busybox wget ships in every alpine- and busybox-based image used here
    return _shell(f"wget -q -O /dev/null {url} || exit 1")


def _redis_node(index: int, host_id: int, host_port: int, tls_host_port: int) -> Service:
    others = [n for n in (1, 2, 3) if n != index]
    return Service(
        name=f"redis-{index}",
        image="redis",
        tag="7.4.2-alpine3.21",
        tier=Tier.DATA,
        host_id=host_id,
        ports=(
            Port("redis", 6379, host_port, PLAIN_BESIDE_TLS),
            Port("tls", 6380, tls_host_port, TLS_PORT),
            Port("bus", 16379),  # cluster gossip stays between the nodes
        ),
        volumes=(VolumeMount(f"redis-{index}-data", "/data"),),
        # A NOAUTH reply still proves the server answers; the password stays out of argv.
        healthcheck=Healthcheck(
            _shell("redis-cli -p 6379 ping | grep -Eq 'PONG|NOAUTH'"),
            interval="15s",
            timeout="5s",
            retries=5,
            start_period="10s",
        ),
        limits=Limits(1, 512),
        profiles=_MIN_UP if index == 1 else _STD_UP,
        depends_on=("vault",),
        flows=(_VAULT, *(Flow(f"redis-{n}", p) for n in others for p in ("redis", "bus"))),
        # The node's config has no secret; its users (verifiers only) come as a file.
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "redis-server", "/devstack/redis.conf"),
            fields=(SecretField("password"),),
            owner="redis:redis",
            shared_with="redis-cluster",
        ),
        system_ca_bundle=True,
    )


def _exporter(index: int) -> Service:
    return Service(
        name=f"redis-exporter-{index}",
        image="oliver006/redis_exporter",
        tag="v1.67.0-alpine",
        tier=Tier.OBSERVABILITY,
        host_id=39 + index,
        ports=(Port("metrics", 9121),),
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:9121/health")),
        limits=Limits(0.25, 128),
        profiles=_FULL,
        depends_on=("vault", f"redis-{index}"),
        flows=(_VAULT, Flow(f"redis-{index}", "redis")),
        env=MappingProxyType(
            {"REDIS_ADDR": f"redis://redis-{index}:6379", "REDIS_USER": account_user(f"redis-exporter-{index}")}
        ),
        client_role=ClientRole.MONITOR,
        credentials=Credentials(
            entrypoint=("/redis_exporter",),
            env=_files(REDIS_PASSWORD_FILE="redis-passwords.json"),
            templates=(
                Template(
                    "redis-passwords.json",
                    f"{SECRETS_DIR}/redis-passwords.json",
                    f'{{"redis://redis-{index}:6379": "{{{{redis_password}}}}"}}\n',
                ),
            ),
            run_as_uid=59000,
        ),
        system_ca_bundle=True,
    )


_API_NAMES = ("reference-api", "api-first", "golang-api", "nodejs-api", "rust-api")
_DATA_CLIENT_FLOWS = (
    _VAULT,
    Flow("postgres", "postgres"),
    Flow("mysql", "mysql"),
    Flow("mongodb", "mongodb"),
    # A cluster client is redirected to whichever node holds a key: it talks to all three.
    Flow("redis-1", "redis"),
    Flow("redis-2", "redis"),
    Flow("redis-3", "redis"),
    Flow("rabbitmq", "amqp"),
)


APP_DIR = "/devstack/app"
# runtime image -> (the app's source in apps/, how the image runs it): standard library only,
# so nothing is fetched at start.
_API_APPS = {
    "python": ("api.py", ("python", f"{APP_DIR}/api.py")),
    "golang": ("main.go", ("go", "run", f"{APP_DIR}/main.go")),
    "node": ("server.js", ("node", f"{APP_DIR}/server.js")),
    "rust": ("main.rs", ("sh", "-c", f"rustc -O -o /tmp/api {APP_DIR}/main.rs && exec /tmp/api")),
}


def _api_env(name: str, data: bool) -> Mapping[str, str]:
    """Where each data service is, which user the API is there, and the file with its password."""
    env = {"SERVICE_NAME": name, "HTTP_PORT": "8000", "HTTPS_PORT": "8443"}
    if data:
        for system, host, port in (
            ("postgres", "postgres", 5432),
            ("mysql", "mysql", 3306),
            ("mongodb", "mongodb", 27017),
            ("redis", "redis-1", 6379),
            ("rabbitmq", "rabbitmq", 5672),
        ):
            prefix = system.upper()
            env |= {
                f"{prefix}_HOST": host,
                f"{prefix}_PORT": str(port),
                f"{prefix}_USER": account_user(name),
                f"{prefix}_DATABASE": account_user(name),
                f"{prefix}_PASSWORD_FILE": f"{SECRETS_DIR}/{system}_password",
            }
    return MappingProxyType(env)


def api_probe(runtime: str, url: str, ca_file: str | None = None) -> tuple[str, ...]:
    """A health probe with what the runtime image ships: python and node have no wget."""
    if runtime == "python":
        context = f"ssl.create_default_context(cafile='{ca_file}')" if ca_file else "None"
        code = f"import ssl, urllib.request; urllib.request.urlopen('{url}', timeout=5, context={context})"
        return ("CMD", "python", "-c", code)
    if runtime == "node":
        env = f"NODE_EXTRA_CA_CERTS={ca_file} " if ca_file else ""
        script = f"fetch('{url}').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
        return ("CMD-SHELL", f'{env}node -e "{script}"')
    # Alpine's busybox wget verifies an https:// URL against /etc/ssl/cert.pem, where the stack's
    # CA is put for these images once TLS is required (Service.system_ca_bundle).
    return _http_probe(url)


def _api(name: str, image: str, tag: str, host_id: int, *, index: int, memory_mb: int, data: bool = True) -> Service:
    http, https = 8000 + index, 8443 + index
    tls = image != "rust"  # Rust's standard library has no TLS (devstack.tls): HTTP in every mode
    return Service(
        name=name,
        image=image,
        tag=tag,
        tier=Tier.APP,
        host_id=host_id,
        ports=(Port("http", 8000, http, PLAIN_BESIDE_TLS), Port("https", 8443, https, TLS_PORT))
        if tls
        else (Port("http", 8000, http),),
        healthcheck=Healthcheck(api_probe(image, "http://127.0.0.1:8000/health")),
        limits=Limits(1, memory_mb),
        profiles=_REF,
        depends_on=("vault", "postgres", "mysql") if data else ("vault",),
        flows=_DATA_CLIENT_FLOWS if data else (_VAULT,),
        env=_api_env(name, data),
        app=_API_APPS[image][0],
        command=_API_APPS[image][1],
        credentials=Credentials(entrypoint=_API_APPS[image][1]) if data else None,
        system_ca_bundle=image in ("golang", "node"),
    )


SERVICES: tuple[Service, ...] = (
    Service(
        name="vault",
        image="hashicorp/vault",
        tag="1.18.5",
        tier=Tier.VAULT,
        host_id=5,
        ports=(Port("api", 8200, 8200), Port("https", 8300, 8300, MIGRATION_PORT)),
        volumes=(VolumeMount("vault-data", "/vault/data"),),
        # sys/health answers 501 (uninitialised) and 503 (sealed): only an unsealed Vault is healthy
        healthcheck=Healthcheck(
            _http_probe("http://127.0.0.1:8200/v1/sys/health"),
            interval="10s",
            timeout="5s",
            retries=6,
            start_period="60s",
        ),
        limits=Limits(1, 512),
        profiles=_ALWAYS,
        capabilities=("IPC_LOCK",),
    ),
    Service(
        name="postgres",
        image="postgres",
        tag="18.1-bookworm",
        tier=Tier.DATA,
        host_id=10,
        ports=(Port("postgres", 5432, 5432),),
        volumes=(VolumeMount("postgres-data", "/var/lib/postgresql"),),
        healthcheck=Healthcheck(
            ("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"),
            interval="15s",
            timeout="5s",
            retries=5,
        ),
        limits=Limits(2, 2048),
        profiles=_MIN_UP,
        depends_on=("vault",),
        flows=(_VAULT,),
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "postgres"),
            fields=(SecretField("user", "dev_admin"), SecretField("password"), SecretField("database", "dev_database")),
            env=_files(POSTGRES_USER_FILE="user", POSTGRES_PASSWORD_FILE="password", POSTGRES_DB_FILE="database"),
            owner="postgres:postgres",
        ),
    ),
    Service(
        name="pgbouncer",
        image="edoburu/pgbouncer",
        tag="v1.25.1-p0",
        tier=Tier.DATA,
        host_id=11,
        ports=(Port("pgbouncer", 5432, 6432),),
        healthcheck=Healthcheck(("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"), interval="15s"),
        limits=Limits(0.5, 256),
        profiles=_MIN_UP,
        depends_on=("vault", "postgres"),
        flows=(_VAULT, Flow("postgres", "postgres")),
        client_role=ClientRole.AUTH,
        # pgbouncer.ini is uploaded (no secret in it); the image's entrypoint leaves an existing one alone.
        credentials=Credentials(
            entrypoint=("/entrypoint.sh", "/usr/bin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"),
            templates=(
                Template("userlist.txt", f"{SECRETS_DIR}/userlist.txt", '"pgbouncer" "{{postgres_password}}"\n'),
            ),
            run_as_uid=70,
        ),
        system_ca_bundle=True,
    ),
    Service(
        name="mysql",
        image="mysql",
        tag="8.0.40",
        tier=Tier.DATA,
        host_id=12,
        ports=(Port("mysql", 3306, 3306),),
        volumes=(VolumeMount("mysql-data", "/var/lib/mysql"),),
        # ping succeeds on "access denied" too: it proves the server answers without a password
        healthcheck=Healthcheck(
            ("CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"),
            interval="15s",
            timeout="5s",
            retries=5,
        ),
        limits=Limits(2, 2048),
        profiles=_STD_UP,
        depends_on=("vault",),
        flows=(_VAULT,),
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "mysqld"),
            fields=(SecretField("root_password"),),
            env=_files(MYSQL_ROOT_PASSWORD_FILE="root_password"),
            owner="mysql:mysql",
        ),
    ),
    _redis_node(1, 13, 6379, 6390),
    Service(
        name="rabbitmq",
        image="rabbitmq",
        tag="3.13.7-management-alpine",
        tier=Tier.DATA,
        host_id=14,
        ports=(
            Port("amqp", 5672, 5672, PLAIN_BESIDE_TLS),
            Port("amqps", 5671, 5671, TLS_PORT),
            Port("management", 15672, 15672),  # HTTPS itself once TLS is required
            Port("management-tls", 15671, 15671, MIGRATION_PORT),
            Port("metrics", 15692),  # HTTPS itself once TLS is required
            Port("metrics-tls", 15691, None, MIGRATION_PORT),
        ),
        volumes=(VolumeMount("rabbitmq-data", "/var/lib/rabbitmq"),),
        healthcheck=Healthcheck(("CMD", "rabbitmq-diagnostics", "-q", "ping")),
        limits=Limits(1, 1024),
        profiles=_STD_UP,
        depends_on=("vault",),
        flows=(_VAULT,),
        # The image dropped *_FILE support: a main config file on the tmpfs carries the admin.
        env=MappingProxyType({"RABBITMQ_CONFIG_FILE": f"{SECRETS_DIR}/rabbitmq.conf"}),
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "rabbitmq-server"),
            fields=(SecretField("user", "dev_admin"), SecretField("password"), SecretField("vhost", "dev_vhost")),
            templates=(
                Template(
                    "rabbitmq.conf",
                    f"{SECRETS_DIR}/rabbitmq.conf",
                    "default_user = {{user}}\ndefault_pass = {{password}}\ndefault_vhost = {{vhost}}\n",
                ),
            ),
            owner="rabbitmq:rabbitmq",
        ),
    ),
    Service(
        name="mongodb",
        image="mongo",
        tag="7.0.16",
        tier=Tier.DATA,
        host_id=15,
        ports=(Port("mongodb", 27017, 27017),),
        volumes=(VolumeMount("mongodb-data", "/data/db"),),
        healthcheck=Healthcheck(
            ("CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"),
            interval="15s",
            timeout="5s",
            retries=5,
        ),
        limits=Limits(2, 2048),
        profiles=_STD_UP,
        depends_on=("vault",),
        flows=(_VAULT,),
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "mongod"),
            fields=(SecretField("user", "dev_admin"), SecretField("password")),
            env=_files(MONGO_INITDB_ROOT_USERNAME_FILE="user", MONGO_INITDB_ROOT_PASSWORD_FILE="password"),
            owner="mongodb:mongodb",
        ),
    ),
    _redis_node(2, 16, 6380, 6391),
    _redis_node(3, 17, 6381, 6392),
    Service(
        name="forgejo",
        image="codeberg.org/forgejo/forgejo",
        tag="1.21.11-0",
        tier=Tier.APP,
        host_id=20,
        ports=(Port("http", 3000, 3000), Port("ssh", 22, 2222)),
        volumes=(VolumeMount("forgejo-data", "/data"),),
        healthcheck=Healthcheck(("CMD", "curl", "-fsS", "http://127.0.0.1:3000/api/healthz")),
        limits=Limits(2, 2048),
        profiles=_MIN_UP,
        depends_on=("vault", "postgres"),
        flows=(_VAULT, Flow("postgres", "postgres")),
        # INSTALL_LOCK skips the web installer: the database and admin are set up as code.
        env=MappingProxyType(
            {
                "USER_UID": "1000",
                "USER_GID": "1000",
                "GITEA__database__DB_TYPE": "postgres",
                "GITEA__database__HOST": "postgres:5432",
                "GITEA__database__NAME": account_user("forgejo"),
                "GITEA__database__USER": account_user("forgejo"),
                "GITEA__security__INSTALL_LOCK": "true",
                "GITEA__metrics__ENABLED": "true",
            }
        ),
        credentials=Credentials(
            entrypoint=("/usr/bin/entrypoint", "/bin/s6-svscan", "/etc/s6"),
            fields=(
                SecretField("admin_user", "devadmin"),
                SecretField("admin_password"),
                SecretField("admin_email", "devadmin@localhost"),
                SecretField("secret_key"),
                SecretField("internal_token"),
            ),
            env=_files(
                GITEA__database__PASSWD__FILE="postgres_password",
                GITEA__security__SECRET_KEY__FILE="secret_key",
                GITEA__security__INTERNAL_TOKEN__FILE="internal_token",
            ),
            owner="git:git",
        ),
    ),
    _api("reference-api", "python", "3.11.11-slim-bookworm", 100, index=0, memory_mb=1024),
    _api("api-first", "python", "3.11.11-slim-bookworm", 104, index=1, memory_mb=1024),
    _api("golang-api", "golang", "1.24.1-alpine3.21", 105, index=2, memory_mb=512),
    _api("nodejs-api", "node", "18.20.8-alpine3.21", 106, index=3, memory_mb=512),
    _api("rust-api", "rust", "1.83.0-alpine3.21", 107, index=4, memory_mb=512, data=False),
    Service(
        name="prometheus",
        image="prom/prometheus",
        tag="v2.55.1",
        tier=Tier.OBSERVABILITY,
        host_id=10,
        ports=(Port("http", 9090, 9090),),
        volumes=(VolumeMount("prometheus-data", "/prometheus"),),
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:9090/-/healthy")),
        limits=Limits(1, 1024),
        profiles=_FULL,
        flows=(
            Flow("vault", "api"),
            Flow("forgejo", "http"),
            Flow("vector", "metrics"),
            Flow("loki", "http"),
            *(Flow(api, "http") for api in _API_NAMES),
        ),
    ),
    Service(
        name="grafana",
        image="grafana/grafana",
        tag="11.4.0",
        tier=Tier.OBSERVABILITY,
        host_id=20,
        ports=(Port("http", 3000, 3001),),
        volumes=(VolumeMount("grafana-data", "/var/lib/grafana"),),
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:3000/api/health")),
        limits=Limits(1, 512),
        profiles=_FULL,
        depends_on=("vault", "prometheus", "loki"),
        flows=(_VAULT, Flow("prometheus", "http"), Flow("loki", "http")),
        env=MappingProxyType({"GF_SECURITY_ADMIN_USER": "admin"}),
        credentials=Credentials(
            entrypoint=("/run.sh",),
            fields=(SecretField("admin_password"),),
            env=_files(GF_SECURITY_ADMIN_PASSWORD__FILE="admin_password"),
            run_as_uid=472,
        ),
    ),
    Service(
        name="loki",
        image="grafana/loki",
        tag="3.3.2",
        tier=Tier.OBSERVABILITY,
        host_id=30,
        ports=(Port("http", 3100, 3100),),
        volumes=(VolumeMount("loki-data", "/loki"),),
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:3100/ready")),
        limits=Limits(1, 1024),
        profiles=_FULL,
    ),
    _exporter(1),
    _exporter(2),
    _exporter(3),
    Service(
        name="cadvisor",
        image="gcr.io/cadvisor/cadvisor",
        tag="v0.51.0",
        tier=Tier.OBSERVABILITY,
        host_id=50,
        ports=(Port("http", 8080),),  # never published: Vector scrapes it inside the network
        # Its metrics are every container's cgroup files (CPU, memory, block I/O), read from the
        # host's cgroup tree as Docker mounts it, read-only. No host path (/, /sys or
        # /var/lib/docker would hold the keys, the Pulumi state, every layer and volume), no
        # docker.sock, no root, no capability; the metrics that would need them are off.
        command=("--enable_metrics=cpu,memory,diskIO",),
        user="65532:65532",  # a uid:gid no other image here runs as
        confined=True,
        host_cgroups=True,
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:8080/healthz")),
        limits=Limits(0.5, 256),
        profiles=_FULL,
    ),
    Service(
        name="vector",
        image="timberio/vector",
        tag="0.50.0-alpine",
        tier=Tier.OBSERVABILITY,
        host_id=60,
        ports=(Port("api", 8686), Port("metrics", 9598)),
        # Container logs as read-only files, instead of the Docker socket (host root).
        binds=(HostBind("/var/lib/docker/containers", "/var/lib/docker/containers"),),
        healthcheck=Healthcheck(_http_probe("http://127.0.0.1:8686/health")),
        limits=Limits(1, 512),
        profiles=_FULL,
        depends_on=("vault", "postgres", "mongodb", "loki"),
        flows=(
            _VAULT,
            Flow("loki", "http"),
            Flow("postgres", "postgres"),
            Flow("mongodb", "mongodb"),
            Flow("rabbitmq", "metrics"),
            Flow("cadvisor", "http"),
            *(Flow(f"redis-exporter-{n}", "metrics") for n in (1, 2, 3)),
        ),
        client_role=ClientRole.MONITOR,
        # Vector's `directory` secret backend reads the wrapper's files.
        credentials=Credentials(entrypoint=("/usr/local/bin/vector",)),
        system_ca_bundle=True,
    ),
)

SERVICES_BY_NAME: Mapping[str, Service] = MappingProxyType({s.name: s for s in SERVICES})
