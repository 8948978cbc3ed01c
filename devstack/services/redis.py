"""The Redis nodes: the catalog entries, the node's config file with its TLS lines per mode, and
its users — an ACL file of password verifiers in each node's own secret, no setup script. Three
nodes form a cluster in standard and full (components/redis_cluster); minimal runs redis-1 alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from devstack.accounts import validate_name
from devstack.backups import BACKUP_USER, NO_PASSWORD, PREAMBLE, RESTORE_USER
from devstack.model import (
    MIN_UP,
    PLAIN_BESIDE_TLS,
    SECRETS_DIR,
    STD_UP,
    TLS_PORT,
    USERS_FILE_KEY,
    AccountServer,
    Backup,
    ClientRole,
    ClusterMember,
    ConfigContext,
    ConfigFile,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Login,
    Part,
    Port,
    SecretField,
    ServerTls,
    Service,
    Template,
    Tier,
    TlsSupport,
    Tuning,
    ValueSyntax,
    VolumeMount,
    shell,
)
from devstack.phases import TlsMode
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, CIPHERS, KEY_FILE, TLS_DIR, with_probe

if TYPE_CHECKING:
    from devstack.settings import Settings

CONF_PATH = "/devstack/redis.conf"

# --- TLS and the config file ----------------------------------------------------------------------


def redis_lines(mode: TlsMode, plain_port: int, tls_port: int, tls_dir: str = TLS_DIR) -> list[str]:
    """redis.conf lines. Required: the plaintext port closes and the cluster bus is TLS too."""
    if mode is TlsMode.OFF:
        return []
    lines = [
        f"tls-port {tls_port}",
        f"tls-cert-file {tls_dir}/{CERT_FILE}",
        f"tls-key-file {tls_dir}/{KEY_FILE}",
        f"tls-ca-cert-file {tls_dir}/{CA_FILE}",
        "tls-auth-clients no",  # clients prove themselves with their ACL password
        'tls-protocols "TLSv1.2 TLSv1.3"',
        f"tls-ciphers {CIPHERS}",
        "tls-prefer-server-ciphers yes",
    ]
    if mode is TlsMode.REQUIRED:
        lines += ["port 0", "tls-cluster yes", "tls-replication yes"]
    else:
        lines += [f"port {plain_port}"]
    return lines


def redis_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck:
    """Once plaintext is refused the health probe speaks TLS too (a NOAUTH still proves life)."""
    if mode is not TlsMode.REQUIRED:
        return service.healthcheck
    port = service.port("tls").container
    probe = f"redis-cli --tls --cacert {tls_dir}/{CA_FILE} --sni localhost -p {port} ping | grep -Eq 'PONG|NOAUTH'"
    return with_probe(service, ("CMD-SHELL", probe))


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is TlsMode.OFF:
        return ServerTls()
    return ServerTls(healthcheck=redis_healthcheck(service, mode))


# --- Tuning: settings from the container's own memory limit -------------------------------------

# Untuned (phases 0-2): the settings the platform started with, whatever the limit.
BASELINE_MEMORY_LINES = ("appendonly yes", "maxmemory 256mb", "maxmemory-policy allkeys-lru")


def redis_maxmemory_mb(limit_mb: int) -> int:
    """Half the limit: an AOF rewrite forks, and the child's copied pages count against the
    container's limit too, as do the output buffers and the allocator's fragmentation."""
    return max(limit_mb // 2, 16)


def eviction_policy(cluster: bool) -> str:
    """By the node's role. A cluster node is the platform's shared store: only keys written with
    a TTL (caches) are evicted, and a write that would need more fails loudly instead of
    dropping data. A standalone node (minimal) is a cache: the least recently used key goes."""
    return "volatile-lru" if cluster else "allkeys-lru"


def redis_memory_lines(limit_mb: int, cluster: bool) -> list[str]:
    """Tuned: memory from the limit, eviction by role, and persistence for a laptop: every write
    in the append-only file, synced once a second, rewritten with an RDB preamble (fast restarts);
    no separate RDB snapshots, which would fork a second time."""
    return [
        f"maxmemory {redis_maxmemory_mb(limit_mb)}mb",
        f"maxmemory-policy {eviction_policy(cluster)}",
        "appendonly yes",
        "appendfsync everysec",
        "aof-use-rdb-preamble yes",
        "auto-aof-rewrite-percentage 100",
        "auto-aof-rewrite-min-size 32mb",
        'save ""',
    ]


def _tuning(service: Service, limit_mb: int) -> Tuning:
    return Tuning(caches={"maxmemory": f"{redis_maxmemory_mb(limit_mb)}mb"})


def redis_conf(settings: Settings, service: Service, cluster: bool, memory_mb: int | None = None) -> str:
    """A node's config: no secret in it; its users (verifiers only) come as a file. With the
    tuning feature (and `memory_mb`, the container's limit) its memory and persistence lines
    are derived from the limit."""
    plain, tls_port = service.port("redis").container, service.port("tls").container
    tls = redis_lines(settings.features.tls, plain, tls_port)
    tuned = settings.features.tuning and memory_mb
    memory = redis_memory_lines(memory_mb, cluster) if memory_mb and tuned else list(BASELINE_MEMORY_LINES)
    lines = [
        f"# {service.name}: users (password verifiers only) come from the wrapper's tmpfs file.",
        "bind 0.0.0.0",
        "protected-mode yes",
        *(tls or [f"port {plain}"]),
        "dir /data",
        *memory,
        f"aclfile {SECRETS_DIR}/{USERS_FILE_KEY}",
    ]
    if cluster:
        lines += [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            "cluster-node-timeout 5000",
            "cluster-require-full-coverage no",
            # Redirects name the static address, which every cluster client can reach.
            f"cluster-announce-ip {settings.static_ip(service)}",
        ]
        if settings.redis_replicas:
            lines.append(f"include {MASTERAUTH_CONF}")  # the password stays in the wrapper's file
    return "\n".join(lines) + "\n"


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    cluster = sum(1 for s in context.selected if s.cluster is not None) > 1
    return (ConfigFile(CONF_PATH, redis_conf(context.settings, service, cluster, context.memory_mb)),)


# --- Users (Redis 7 ACL) --------------------------------------------------------------------------

_RESERVED_USERS = frozenset({"default"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class RedisRole(StrEnum):
    APP = "app"  # data commands on its own keys (<name>:*) and channels only
    EXPORTER = "exporter"  # read-only monitoring as redis_exporter needs it; no data access
    BACKUP = "backup"  # the management's: the RDB through the replication handshake, the key count
    RESTORE = "restore"  # the management's: keys restored (MIGRATE's RESTORE), nothing read


@dataclass(frozen=True)
class RedisUser:
    """A Redis ACL user, known by the SHA-256 verifier of its password only."""

    name: str
    password_sha256: str = field(repr=False)
    role: RedisRole = RedisRole.APP

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", RedisRole(self.role))
        validate_name(self.name, "Redis user name")
        if self.name in _RESERVED_USERS:
            raise ValueError(f"Redis user name {self.name!r} is reserved (the default user is the admin)")
        _check_sha256(self.password_sha256, f"Redis user {self.name!r}")

    @classmethod
    def with_password(cls, name: str, password: str, role: RedisRole = RedisRole.APP) -> RedisUser:
        if not password:
            raise ValueError(f"Redis user {name!r}: empty password")
        return cls(name, sha256_hex(password), role)


def sha256_hex(password: str) -> str:
    """The verifier Redis ACLs accept after `#`: SHA-256 of the UTF-8 password, lowercase hex."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def _check_sha256(value: str, what: str) -> None:
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"{what}: expected a SHA-256 verifier (64 lowercase hex digits)")


# What a metrics exporter (oliver006/redis_exporter, default flags) calls; no key or channel access.
_REDIS_EXPORTER_RULES = (
    "resetkeys resetchannels -@all"
    " +auth +hello +ping +echo +select +quit"
    " +info +config|get +client|list +client|info +client|id"
    " +cluster|info +cluster|nodes +cluster|myid"
    " +slowlog|get +slowlog|len +latency|latest +latency|histogram"
)

# What `redis-cli --rdb` sends (REPLCONF capa/rdb-only, then SYNC) and the key count; no key,
# no channel, nothing else: it cannot read a single value by name nor change anything.
_REDIS_BACKUP_RULES = "resetkeys resetchannels -@all +auth +hello +ping +replconf +sync +psync +dbsize"

# What a MIGRATE into the node runs as this user (RESTORE, RESTORE-ASKING in a cluster); it can
# write any key that way but read none, and flush, configure or inspect nothing.
_REDIS_RESTORE_RULES = "resetkeys ~* resetchannels -@all +auth +hello +ping +select +restore +restore-asking +asking"

# Data commands on the client's own keys and channels; cluster topology for cluster clients; no
# @admin or @dangerous command (KEYS, FLUSH*, CONFIG, DEBUG, SORT, MIGRATE, CLIENT KILL, INFO, ...)
# and nothing that changes server-wide state (FUNCTION LOAD/DELETE/FLUSH, SCRIPT FLUSH/KILL).
_REDIS_APP_CATEGORIES = (
    "-@all +@read +@write +@keyspace +@string +@hash +@list +@set +@sortedset +@stream +@bitmap"
    " +@hyperloglog +@geo +@blocking +@transaction +@pubsub +@scripting +@connection"
    " +cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|myid +cluster|keyslot"
    " -@admin -@dangerous -function -script|flush -script|kill -script|debug -randomkey"
)


def redis_acl_lines(admin_password_sha256: str, users: Sequence[RedisUser]) -> list[str]:
    """`user` lines for a Redis node's config: the admin as `default`, then one line per client.

    Only SHA-256 verifiers (`#<hex>`) appear, so the config holds no plaintext password.
    EXPORTER: INFO, PING, CONFIG GET, CLIENT LIST, CLUSTER INFO/NODES, SLOWLOG, LATENCY and the
    connection commands; no key, no channel, no write. APP: data commands on keys and channels
    `<name>:*` only.
    """
    _check_sha256(admin_password_sha256, "Redis admin password")
    names: set[str] = set()
    lines = [f"user default on #{admin_password_sha256} ~* &* +@all"]
    for user in users:
        if user.name in names:
            raise ValueError(f"Redis user {user.name!r} is listed twice")
        names.add(user.name)
        verifier = f"#{user.password_sha256}"
        if user.role is RedisRole.EXPORTER:
            lines.append(f"user {user.name} reset on {verifier} {_REDIS_EXPORTER_RULES}")
        elif user.role is RedisRole.BACKUP:
            lines.append(f"user {user.name} reset on {verifier} {_REDIS_BACKUP_RULES}")
        elif user.role is RedisRole.RESTORE:
            lines.append(f"user {user.name} reset on {verifier} {_REDIS_RESTORE_RULES}")
        else:
            scope = f"resetkeys ~{user.name}:* resetchannels &{user.name}:*"
            lines.append(f"user {user.name} reset on {verifier} {scope} {_REDIS_APP_CATEGORIES}")
    return lines


def users_file(admin_password: str, logins: Sequence[Login]) -> str:
    """A node's ACL file: the admin and each client, by password verifier only."""
    roles = {
        ClientRole.MONITOR: RedisRole.EXPORTER,
        ClientRole.BACKUP: RedisRole.BACKUP,
        ClientRole.RESTORE: RedisRole.RESTORE,
    }
    users = [
        RedisUser.with_password(client.user, password, roles.get(client.role, RedisRole.APP))
        for client, password in logins
    ]
    return "\n".join(redis_acl_lines(sha256_hex(admin_password), users)) + "\n"


# --- Backups: each node's RDB, through the backup user's replication handshake ------------------

# Where the node listens, read from its own config (the tests name their copy in REDIS_CONF):
# its plain port (REDIS_PORT in the tests), or once TLS is required (`port 0`) its tls-port,
# spoken with --tls against the stack's CA. The node asks no client certificate
# (tls-auth-clients no): the accounts prove themselves with their ACL passwords. redis-cli's
# TLS options go in "$@"; the scratch server's (to MIGRATE over TLS) in a config file of its own.
_NODE = f"""conf="${{REDIS_CONF:-{CONF_PATH}}}"
node_port="${{REDIS_PORT:-6379}}"
: > "$secrets/side-tls.conf"
set --
if grep -qsx 'port 0' "$conf"; then
    node_port=$(sed -n 's/^tls-port //p' "$conf")
    set -- --tls --cacert "$(sed -n 's/^tls-ca-cert-file //p' "$conf")" --sni localhost
    for option in tls-cert-file tls-key-file tls-ca-cert-file; do
        printf '%s "%s"\\n' "$option" "$(sed -n "s/^$option //p" "$conf")" >> "$secrets/side-tls.conf"
    done
    printf 'tls-cluster yes\\n' >> "$secrets/side-tls.conf"
fi
"""
_REDIS_CLI = 'redis-cli -p "$node_port" "$@" --no-auth-warning'


SIDE_DIR = "devstack-restore"  # in the node's data volume: the RDB a restore checks
_SIDE = '"${REDIS_SIDE_DIR:-/data}/' + SIDE_DIR + '"'

# A scratch redis-server on a private socket that loads the side RDB: no port, no config but its
# TLS client lines (so no cluster, no ACL), no saving; stopped when the script ends.
_SIDE_SERVER = f"""redis-server "$secrets/side-tls.conf" --port 0 --unixsocket "$secrets/side.sock" \\
    --dir {_SIDE} --dbfilename dump.rdb --appendonly no --save '' --daemonize no \\
    --logfile "$secrets/side.log" </dev/null &
side=$!
stop_side() {{ redis-cli -s "$secrets/side.sock" SHUTDOWN NOSAVE >/dev/null 2>&1 || true; wait "$side" || true; }}
trap 'stop_side; rm -rf "$secrets"' EXIT
tries=0
until redis-cli -s "$secrets/side.sock" PING >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$side" 2>/dev/null; then cat "$secrets/side.log" >&2; exit 1; fi
    sleep 0.1
done
"""


def _redis_fingerprint(part: Part, on_side: bool) -> str:
    """The keys the node holds, or (on the side) the keys of the restored RDB once the scratch
    server has loaded it (the RDB's own CRC64 guards its content)."""
    if on_side:
        no_tls = ': > "$secrets/side-tls.conf"\n'  # the scratch server only answers here
        count = NO_PASSWORD + no_tls + _SIDE_SERVER + 'n=$(redis-cli -s "$secrets/side.sock" DBSIZE)\n'
    else:
        ask = f"{_REDIS_CLI} --user {BACKUP_USER} --askpass DBSIZE"
        count = PREAMBLE + _NODE + f"""n=$(printf '%s\\n' "$password" | {ask})\n"""
    return count + "printf 'keys\\t%s\\t-\\n' \"$n\"\n"


def _redis_restore(part: Part) -> str:
    """The RDB (the rest of stdin) into the side directory, checked by redis-check-rdb."""
    return NO_PASSWORD + (
        f"rm -rf {_SIDE} && mkdir -p {_SIDE}\n"
        f"cat > {_SIDE}/dump.rdb\n"
        f'redis-check-rdb {_SIDE}/dump.rdb >"$secrets/check.log" 2>&1 || {{ cat "$secrets/check.log" >&2; exit 1; }}\n'
    )


def _redis_swap(part: Part) -> str:
    """Every key of the verified RDB into the live node, replacing what it holds under that name:
    the scratch server MIGRATEs each key (COPY REPLACE) to the node, logged in as the restore
    user. The commands, password included, reach redis-cli on its stdin (printf is the shell's own)."""
    return (
        PREAMBLE
        + _NODE
        + _SIDE_SERVER
        + f"""redis-cli -s "$secrets/side.sock" --scan > "$secrets/keys"
while IFS= read -r key; do
    escaped=$(printf '%s' "$key" | sed 's/[\\\\"]/\\\\&/g')
    printf 'MIGRATE 127.0.0.1 %s "" 0 10000 COPY REPLACE AUTH2 {RESTORE_USER} "%s" KEYS "%s"\\n' \\
        "$node_port" "$password" "$escaped"
done < "$secrets/keys" | redis-cli -s "$secrets/side.sock" > "$secrets/migrated"
if grep -v '^OK$' "$secrets/migrated" >&2; then exit 1; fi
"""
    )


BACKUP = Backup(
    parts="printf 'dump.rdb\\t\\n'",
    dump=lambda part: (
        PREAMBLE + _NODE + f"""printf '%s\\n' "$password" | {_REDIS_CLI} --user {BACKUP_USER} --askpass --rdb -\n"""
    ),
    fingerprint=_redis_fingerprint,
    restore=_redis_restore,
    swap=_redis_swap,
    discard=lambda part: f"rm -rf {_SIDE}\n",
    version="redis-cli --version",
)


# A cluster client is redirected to whichever node holds a key: it has an account on every node.
SERVES = AccountServer(
    "redis", port="redis", users_file=users_file, every_node=True, backup_roles=(ClientRole.BACKUP, ClientRole.RESTORE)
)

# --- The catalog entries --------------------------------------------------------------------------


REPLICAS_KEY = "redisReplicas"  # the config key that adds a replica per master
NODE_NUMBERS = (1, 2, 3, 4, 5, 6)  # 1-3 the masters; 4-6 their replicas, with the key on
MASTERAUTH_CONF = f"{SECRETS_DIR}/masterauth.conf"  # rendered by the wrapper: a replica logs in to its master


def node(index: int, host_id: int, host_port: int | None, tls_host_port: int | None, replica: bool = False) -> Service:
    others = [n for n in NODE_NUMBERS if n != index]
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
        switch=REPLICAS_KEY if replica else None,
        volumes=(VolumeMount(f"redis-{index}-data", "/data"),),
        # A NOAUTH reply still proves the server answers; the password stays out of argv.
        healthcheck=Healthcheck(
            shell("redis-cli -p 6379 ping | grep -Eq 'PONG|NOAUTH'"),
            interval="15s",
            timeout="5s",
            retries=5,
            start_period="10s",
        ),
        limits=Limits(1, 64, weight=1),
        profiles=MIN_UP if index == 1 else STD_UP,
        # redis (Alpine): addgroup -g 1000 redis, adduser -u 999 in its Dockerfile; its entrypoint
        # steps down with su-exec only when started as root.
        hardening=Hardening(user="999:1000"),
        depends_on=("vault",),
        flows=(VAULT_FLOW, *(Flow(f"redis-{n}", p) for n in others for p in ("redis", "bus"))),
        # The node's config has no secret; its users (verifiers only) come as a file.
        credentials=Credentials(
            entrypoint=("docker-entrypoint.sh", "redis-server", CONF_PATH),
            fields=(SecretField("password"),),
            templates=(Template("masterauth.conf", MASTERAUTH_CONF, 'masterauth "{{password}}"\n', ValueSyntax.REDIS),),
            owner="redis:redis",
            shared_with="redis-cluster",
        ),
        system_ca_bundle=True,
        tls=TlsSupport(owner=999, settings=_tls),
        config_files=_config_files,
        serves=SERVES,
        backup=BACKUP,
        cluster=ClusterMember(plain_port="redis", tls_port="tls"),
        tuning=_tuning,
    )


NODES: tuple[Service, ...] = (node(1, 13, 6379, 6390), node(2, 16, 6380, 6391), node(3, 17, 6381, 6392))
# With redisReplicas: one replica per master, unpublished (clients find them through the cluster).
REPLICAS: tuple[Service, ...] = tuple(node(i, h, None, None, replica=True) for i, h in ((4, 18), (5, 19), (6, 21)))
