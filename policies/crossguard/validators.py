"""The pack's rules as plain functions over resource inputs, shared by the CrossGuard pack and the
offline check (`python -m tools.policy check`).

Inputs are dicts as the engine hands them to a policy pack: the provider's camelCase input names
(`envs`, `networksAdvanced`, `ecdsaCurve`, ...). A value the engine does not know yet is
`UNKNOWN`; such a value is skipped, never guessed. The offline plan prints a secret as `SECRET`;
the engine hands the pack the plain value instead, so the rules never rely on that mark alone.
Standard library only: the pack runs in its own process, apart from the program.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UNKNOWN = "[unknown]"
SECRET = "[secret]"

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
LOCAL_COMMAND = "command:local:Command"

SERVICE_LABEL = "devstack.service"
TIER_LABEL = "devstack.tier"
# The Docker provider has no pids_limit input: the program sets the limit with `docker update
# --pids-limit N <name>` (a local command) and records N in this label; RULE_PIDS checks both.
PIDS_LABEL = "devstack.pids-limit"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    inputs: Mapping[str, Any]
    urn: str = ""
    protect: bool = False
    # None: not known. The engine's analyzer protocol carries `protect` but no retainOnDelete, so
    # the pack sees None there; the offline plan knows it.
    retain_on_delete: bool | None = None


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str  # URN, or the name when there is none
    message: str


Config = Mapping[str, Any]
Check = Callable[[Resource, Config], list[str]]


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def _items(value: Any) -> list[Any]:
    """A list input, or nothing when it is absent or unknown."""
    return list(value) if _known(value) and isinstance(value, Sequence) and not isinstance(value, str) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if _known(value) and isinstance(value, Mapping) else {}


def labels(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(entry.get("label")): str(entry.get("value"))
        for entry in map(_mapping, _items(inputs.get("labels")))
        if _known(entry.get("label"))
    }


def service_of(resource: Resource) -> str:
    return labels(resource.inputs).get(SERVICE_LABEL) or resource.name


# --- published ports -------------------------------------------------------------------------


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def check_ports(resource: Resource, config: Config) -> list[str]:
    """Every published port binds to the address the user chose, never to all interfaces."""
    bind = str(config.get("bindAddress", "127.0.0.1"))
    problems = []
    for port in map(_mapping, _items(resource.inputs.get("ports"))):
        ip = port.get("ip")
        if ip == UNKNOWN:
            continue
        where = f"host port {port.get('external', '(random)')} -> {port.get('internal')}"
        if not ip:
            problems.append(f"{where} has no ip: Docker publishes it on every interface, not only {bind}")
        elif not _same_address(str(ip), bind):
            problems.append(f"{where} binds {ip}, beyond the chosen bind address {bind}")
    return problems


# --- data volumes ----------------------------------------------------------------------------


def check_volume(resource: Resource, _config: Config) -> list[str]:
    """A data volume can never be deleted by Pulumi: protected and retained on delete."""
    problems = []
    if not resource.protect:
        problems.append("data volume is not protect=True: `pulumi destroy` or a rename would delete it")
    if resource.retain_on_delete is False:
        problems.append("data volume is not retain_on_delete=True: Pulumi would remove it from Docker")
    return problems


# --- images ----------------------------------------------------------------------------------

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_VERSION = re.compile(r"\d+\.\d+")  # at least major.minor: `18` or `alpine` still float


def image_problem(reference: str) -> str | None:
    """Why an image reference is not pinned, or None. A digest pins; else an exact version tag."""
    if _DIGEST.match(reference):
        return None  # an image ID: the content itself
    name, _, digest = reference.partition("@")
    if digest:
        return None if _DIGEST.match(digest) else f"image {reference} has a malformed digest"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {reference} has no tag (Docker takes latest)"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return f"image {reference} uses latest"
    if not _VERSION.search(tag):
        return f"image {reference} has tag '{tag}', not an exact version (major.minor at least)"
    return None


def check_image(resource: Resource, _config: Config) -> list[str]:
    key = "name" if resource.type == REMOTE_IMAGE else "image"
    reference = resource.inputs.get(key)
    if not _known(reference) or not isinstance(reference, str):
        return [] if reference == UNKNOWN else [f"no image reference in `{key}`"]
    problem = image_problem(reference)
    return [problem] if problem else []


# --- what a container holds ------------------------------------------------------------------


def _env(inputs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for entry in _items(inputs.get("envs")):
        if isinstance(entry, str) and entry != UNKNOWN:
            name, _, value = entry.partition("=")
            yield name, value


def check_root_token(resource: Resource, config: Config) -> list[str]:
    """With AppRole identities on, no container holds a Vault token: no variable, no token file.
    (Phase 0, the rollback target, reads with the root token from a 0400 file on purpose.)"""
    if not config.get("approle", True):
        return []
    problems = [
        f"environment variable {name} hands the container a Vault token"
        for name, _ in _env(resource.inputs)
        if name in ("VAULT_TOKEN", "DEVSTACK_TOKEN_FILE")
    ]
    for upload in map(_mapping, _items(resource.inputs.get("uploads"))):
        path = str(upload.get("file", ""))
        if "token" in path.rsplit("/", 1)[-1].lower():
            problems.append(f"upload {path} puts a Vault token into the container")
    return problems


_SECRET_WORDS = {"PASSWORD", "PASSWD", "PASS", "PWD", "TOKEN", "SECRET", "CREDENTIALS", "PASSPHRASE"}
_SECRET_PAIRS = {("SECRET", "ID"), ("SECRET", "KEY"), ("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY")}
_SECRET_FLAGS = {"password", "pass", "passwd", "token", "secret", "requirepass", "masterauth", "api-key", "apikey"}
_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)


def secret_name(name: str) -> bool:
    """A variable or option named for a secret (its last word says so: POSTGRES_PASSWORD,
    VAULT_TOKEN, AWS_SECRET_ACCESS_KEY). *_FILE, *_PATH and the like name where it lives."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.upper()) if w]
    if not words:
        return False
    return words[-1] in _SECRET_WORDS or tuple(words[-2:]) in _SECRET_PAIRS


def _argv_problems(where: str, argv: list[Any]) -> list[str]:
    problems = []
    for index, arg in enumerate(argv):
        if not isinstance(arg, str) or arg == UNKNOWN:
            continue
        if arg == SECRET:
            problems.append(f"{where} argument {index} is a secret")
            continue
        if _USERINFO.search(arg):
            problems.append(f"{where} argument {index} carries a password in a URL")
            continue
        flag = arg.lstrip("-")
        key, sep, value = flag.partition("=")
        if sep and value and (secret_name(key) or key.lower() in _SECRET_FLAGS):
            problems.append(f"{where} argument {index} sets {key} on the command line")
        elif not sep and arg.startswith("-") and flag.lower() in _SECRET_FLAGS and index + 1 < len(argv):
            problems.append(f"{where} argument {index} ({arg}) takes a secret on the command line")
    return problems


def check_secrets(resource: Resource, _config: Config) -> list[str]:
    """No secret in a container's environment or argv (`docker inspect` and `ps` show both):
    secrets reach containers as files."""
    problems = []
    for name, value in _env(resource.inputs):
        if value == SECRET:
            problems.append(f"environment variable {name} is a secret")
        elif value and secret_name(name):
            problems.append(f"environment variable {name} holds a secret")
        elif _USERINFO.search(value):
            problems.append(f"environment variable {name} carries a password in a URL")
    for key in ("entrypoints", "command"):
        problems += _argv_problems(key, _items(resource.inputs.get(key)))
    healthcheck = _mapping(resource.inputs.get("healthcheck"))
    problems += _argv_problems("healthcheck", _items(healthcheck.get("tests")))
    return problems


_ENGINE_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock")


def _host_paths(inputs: Mapping[str, Any]) -> Iterator[str]:
    for volume in map(_mapping, _items(inputs.get("volumes"))):
        if _known(volume.get("hostPath")):
            yield str(volume["hostPath"])
    for mount in map(_mapping, _items(inputs.get("mounts"))):
        if mount.get("type") == "bind" and _known(mount.get("source")):
            yield str(mount["source"])


def check_engine_socket(resource: Resource, _config: Config) -> list[str]:
    """No container reaches the Docker engine's socket (root on the host): neither the socket
    nor a host folder that holds it (`/`, `/run`, `/var/run`, `/var`)."""
    problems = []
    for path in _host_paths(resource.inputs):
        folder = path.rstrip("/") + "/"
        for socket in _ENGINE_SOCKETS:
            if path.rstrip("/") == socket or socket.startswith(folder):
                problems.append(f"host path {path} gives the container the engine socket {socket}")
                break
    return problems


_HOST_NAMESPACES = ("networkMode", "pidMode", "ipcMode", "usernsMode")
_ROOT_EQUIVALENT_CAPS = {"ALL", "SYS_ADMIN", "CAP_SYS_ADMIN", "SYS_MODULE", "CAP_SYS_MODULE"}


def check_privileged(resource: Resource, _config: Config) -> list[str]:
    """No privileged container, nor its equivalents: the host's namespaces or SYS_ADMIN/ALL."""
    inputs = resource.inputs
    problems = ["privileged=true"] if inputs.get("privileged") is True else []
    problems += [f"{key}=host shares the host's namespace" for key in _HOST_NAMESPACES if inputs.get(key) == "host"]
    adds = {str(c).upper() for c in _items(_mapping(inputs.get("capabilities")).get("adds"))}
    problems += [f"capability {cap} amounts to privileged" for cap in sorted(adds & _ROOT_EQUIVALENT_CAPS)]
    return problems


_ROOT_USERS = {"", "root", "0", "0:0", "root:root", "root:0", "0:root"}


def check_hardening(resource: Resource, config: Config) -> list[str]:
    """The strict end state on every container: no-new-privileges, every capability dropped
    (NET_RAW never added back), a non-root user, a read-only root filesystem, a PID limit. A
    service may be excused from `user` or `readOnly` by name, with a reason, in the config."""
    if not config.get("enforce", True):
        return []
    inputs = resource.inputs
    excused = _mapping(_mapping(config.get("exceptions")).get(service_of(resource)))
    problems = []
    options = [str(o).replace("=", ":") for o in _items(inputs.get("securityOpts"))]
    if not {"no-new-privileges", "no-new-privileges:true"} & set(options):
        problems.append("no-new-privileges is not set")
    capabilities = _mapping(inputs.get("capabilities"))
    if "ALL" not in {str(c).upper() for c in _items(capabilities.get("drops"))}:
        problems.append("capabilities are not dropped to none (drops: ALL)")
    if {"NET_RAW", "CAP_NET_RAW"} & {str(c).upper() for c in _items(capabilities.get("adds"))}:
        problems.append("NET_RAW is added back")
    if "user" not in excused and str(inputs.get("user") or "") in _ROOT_USERS:
        problems.append("runs as root (no non-root user)")
    if "readOnly" not in excused and inputs.get("readOnly") is not True:
        problems.append("root filesystem is writable (readOnly is not true)")
    limit = inputs.get("pidsLimit")
    if (not isinstance(limit, int) or limit <= 0) and pids_label(resource) is None:
        problems.append(f"no PID limit (pidsLimit, or the {PIDS_LABEL} label and its docker update)")
    return problems


def pids_label(resource: Resource) -> int | None:
    value = labels(resource.inputs).get(PIDS_LABEL, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def pids_command(container: str, limit: int) -> str:
    """The command line that applies a PID limit (components/service runs exactly this)."""
    return f"docker update --pids-limit {limit} {container}"


RULE_PIDS = "pids-limit-applied"
PIDS_DESCRIPTION = "A container labelled with a PID limit has the docker update command that sets it."


def check_pids_applied(resources: Sequence[Resource], _config: Config) -> list[Violation]:
    """Every PID limit a container's label promises is set by a local `docker update` command."""
    commands = {
        str(r.inputs.get("create")) for r in resources if r.type == LOCAL_COMMAND and _known(r.inputs.get("create"))
    }
    violations = []
    for resource in resources:
        limit = pids_label(resource) if resource.type == CONTAINER else None
        name = resource.inputs.get("name")
        if limit is None or not _known(name):
            continue
        if pids_command(str(name), limit) not in commands:
            message = f"label {PIDS_LABEL}={limit} but no `{pids_command(str(name), limit)}` command sets it"
            violations.append(Violation(RULE_PIDS, _where(resource), message))
    return violations


# --- TLS keys --------------------------------------------------------------------------------

_STRONG_CURVES = {"P256", "P384", "P521"}


def check_key(resource: Resource, _config: Config) -> list[str]:
    """No TLS private key weaker than P-256 or RSA-2048 (the provider's defaults: RSA 2048 bits,
    ECDSA P224, so a missing curve is a weak one)."""
    algorithm = resource.inputs.get("algorithm")
    if algorithm == UNKNOWN:
        return []
    if algorithm == "ED25519":
        return []
    if algorithm == "RSA":
        bits = resource.inputs.get("rsaBits", 2048)
        return [] if bits == UNKNOWN or (isinstance(bits, int) and bits >= 2048) else [f"RSA key of {bits} bits"]
    if algorithm == "ECDSA":
        curve = resource.inputs.get("ecdsaCurve", "P224")
        return [] if curve == UNKNOWN or curve in _STRONG_CURVES else [f"ECDSA key on curve {curve}"]
    return [f"key algorithm {algorithm!r} is not RSA, ECDSA or ED25519"]


# --- networks across tiers (a stack rule) ----------------------------------------------------

RULE_TIERS = "tiers-share-networks-only-by-flow"


def network_names(resource: Resource) -> set[str] | None:
    """The networks a container joins, or None when the engine does not know them yet."""
    names = set()
    for attachment in _items(resource.inputs.get("networksAdvanced")):
        name = _mapping(attachment).get("name")
        if not _known(name):
            return None
        names.add(str(name))
    mode = resource.inputs.get("networkMode")
    if _known(mode) and mode not in ("bridge", "default", "none", "host") and not names:
        names.add(str(mode))
    return names


def check_tiers(resources: Sequence[Resource], config: Config) -> list[Violation]:
    """With segmentation on, two containers of different tiers share a network only when a
    declared flow connects them, or one is a hub (Vault) that serves the other's tier."""
    if not config.get("segmentation", True):
        return []
    tiers = {str(k): str(v) for k, v in _mapping(config.get("tiers")).items()}
    flows = {(str(pair[0]), str(pair[1])) for pair in _items(config.get("flows")) if len(pair) == 2}
    hubs = {str(hub): {str(t) for t in served} for hub, served in _mapping(config.get("hubs")).items()}
    members: dict[str, list[tuple[str, str, Resource]]] = {}
    violations = []
    for resource in resources:
        if resource.type != CONTAINER:
            continue
        service = service_of(resource)
        tier = tiers.get(service) or labels(resource.inputs).get(TIER_LABEL)
        joined = network_names(resource)
        if joined is None:
            continue
        if not tier:
            violations.append(Violation(RULE_TIERS, _where(resource), f"{service} belongs to no known tier"))
            continue
        for network in joined:
            members.setdefault(network, []).append((service, tier, resource))

    def allowed(a: tuple[str, str], b: tuple[str, str]) -> bool:
        (service_a, tier_a), (service_b, tier_b) = a, b
        if (service_a, service_b) in flows or (service_b, service_a) in flows:
            return True
        return tier_b in hubs.get(service_a, ()) or tier_a in hubs.get(service_b, ())

    for network, joined_by in sorted(members.items()):
        for i, (service_a, tier_a, resource_a) in enumerate(joined_by):
            for service_b, tier_b, _ in joined_by[i + 1 :]:
                if tier_a != tier_b and not allowed((service_a, tier_a), (service_b, tier_b)):
                    violations.append(
                        Violation(
                            RULE_TIERS,
                            _where(resource_a),
                            f"{service_a} ({tier_a}) and {service_b} ({tier_b}) share network {network} "
                            "without a declared flow between them",
                        )
                    )
    return violations


# --- the rule table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    types: frozenset[str]
    check: Check
    config: Mapping[str, Any]  # JSON schema of its policy config (property -> schema with default)


def _rule(name: str, description: str, types: set[str], check: Check, **config: Any) -> Rule:
    return Rule(name, description, frozenset(types), check, config)


TIERS_DESCRIPTION = "With segmentation on, containers of different tiers share a network only along a declared flow."
TIERS_CONFIG: Mapping[str, Any] = {
    "segmentation": {"type": "boolean", "default": True},
    "tiers": {"type": "object", "default": {}},
    "flows": {"type": "array", "default": []},
    "hubs": {"type": "object", "default": {}},
}

RULES: tuple[Rule, ...] = (
    _rule(
        "ports-within-bind-address",
        "Every published port binds to the chosen bind address, never to all interfaces.",
        {CONTAINER},
        check_ports,
        bindAddress={"type": "string", "default": "127.0.0.1"},
    ),
    _rule(
        "data-volumes-protected",
        "Every data volume is protected (and retained on delete).",
        {VOLUME},
        check_volume,
    ),
    _rule(
        "images-exact-tag",
        "Every image is pinned: an exact version tag or a digest, never latest or no tag.",
        {REMOTE_IMAGE, CONTAINER},
        check_image,
    ),
    _rule(
        "no-vault-root-token",
        "With AppRole on, no container holds a Vault token (variable or file).",
        {CONTAINER},
        check_root_token,
        approle={"type": "boolean", "default": True},
    ),
    _rule(
        "no-secrets-in-env-or-argv",
        "No secret in a container's environment, entrypoint, command or health check.",
        {CONTAINER},
        check_secrets,
    ),
    _rule(
        "no-engine-socket",
        "No container mounts the Docker engine's socket or a host folder holding it.",
        {CONTAINER},
        check_engine_socket,
    ),
    _rule(
        "no-privileged",
        "No privileged container, host namespace or SYS_ADMIN/ALL capability.",
        {CONTAINER},
        check_privileged,
    ),
    _rule(
        "strict-hardening",
        "With hardening on: no-new-privileges, no capabilities, non-root, read-only root, PID limit.",
        {CONTAINER},
        check_hardening,
        enforce={"type": "boolean", "default": True},
        exceptions={"type": "object", "default": {}},
    ),
    _rule(
        "tls-key-strength",
        "No TLS private key weaker than ECDSA P-256 or RSA 2048 bits.",
        {PRIVATE_KEY},
        check_key,
    ),
)
RULE_NAMES: tuple[str, ...] = (*(rule.name for rule in RULES), RULE_TIERS, RULE_PIDS)


def _where(resource: Resource) -> str:
    return resource.urn or resource.name


def check_resource(rule: Rule, resource: Resource, config: Config) -> list[str]:
    return rule.check(resource, config) if resource.type in rule.types else []


def check_all(resources: Sequence[Resource], config: Mapping[str, Config]) -> list[Violation]:
    """Every rule over every resource; `config` maps a rule's name to its policy config."""
    violations = [
        Violation(rule.name, _where(resource), message)
        for resource in resources
        for rule in RULES
        for message in check_resource(rule, resource, config.get(rule.name, {}))
    ]
    stack = check_tiers(resources, config.get(RULE_TIERS, {}))
    return violations + stack + check_pids_applied(resources, config.get(RULE_PIDS, {}))
