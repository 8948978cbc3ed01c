"""Stack config -> one immutable, validated Settings object.

Everything a component needs from config is resolved here, before any resource exists:
a bad value stops the program with one ConfigError line naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from devstack.catalog import SERVICES, SERVICES_BY_NAME, services_for
from devstack.errors import PROJECT, ConfigError
from devstack.memory import Allocation, allocate, default_budget, parse_size
from devstack.model import Profile, Service, Tier
from devstack.phases import MAX_PHASE, Features, TlsMode, resolve_features
from devstack.services import vault
from devstack.services.vault import VAULT


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str  # as declared in Pulumi.yaml
    default: str
    description: str


# Every key the program reads; Pulumi.yaml declares the same set (a test keeps them in step).
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("phase", "integer", "0", "Rollout phase 0-4 (0: insecure baseline and rollback target)."),
    ConfigKey("profiles", "string", "standard", "Comma-separated profiles: minimal, standard, full, reference."),
    ConfigKey("bindAddress", "string", "127.0.0.1", "Host address that published ports bind to."),
    ConfigKey(
        "exposeBeyondLoopback",
        "boolean",
        "false",
        "Acknowledges a bindAddress other than loopback: every published port is reachable from the network.",
    ),
    ConfigKey("hostPorts", "string", "", "Host port overrides: service[.port]=N|none, comma-separated."),
    ConfigKey("imageTags", "string", "", "Image tag overrides: service=tag, comma-separated (never latest)."),
    ConfigKey("staticIps", "string", "", "Static IP overrides: service=address, comma-separated."),
    ConfigKey("flatSubnet", "string", "172.20.0.0/16", "Subnet of the single flat network (no segmentation)."),
    ConfigKey("vaultSubnet", "string", "172.20.1.0/24", "Subnet of the Vault tier."),
    ConfigKey("dataSubnet", "string", "172.20.2.0/24", "Subnet of the data tier."),
    ConfigKey("appSubnet", "string", "172.20.3.0/24", "Subnet of the application tier."),
    ConfigKey("observabilitySubnet", "string", "172.20.4.0/24", "Subnet of the observability tier."),
    ConfigKey("linkSubnet", "string", "172.20.128.0/17", "Pool of /28 link networks for cross-tier flows."),
    ConfigKey("features", "string", "", "Per-feature overrides of the phase table: name=value, comma-separated."),
    ConfigKey("stateDir", "string", "", "Folder for Vault's 0600 recovery file (default: ~/.config/devstack)."),
    ConfigKey("secretIdRotationDays", "integer", "7", "A new AppRole secret_id per container every N days (1-29)."),
    ConfigKey(
        "memoryBudget",
        "string",
        "",
        "Memory all containers may use together, e.g. 8GiB (default: 2GiB minimal, 4GiB standard, "
        "6GiB full, +2GiB reference).",
    ),
    ConfigKey(
        "redisReplicas",
        "boolean",
        "false",
        "A replica per Redis cluster master (three more containers, standard and full).",
    ),
    ConfigKey(
        "databaseExporters",
        "boolean",
        "true",
        "The PostgreSQL, MySQL and PgBouncer exporters (full profile; their password is uploaded as a secret file).",
    ),
)
_KEYS_BY_NAME = {key.name: key for key in CONFIG_KEYS}
SWITCH_KEYS = tuple(sorted({s.switch for s in SERVICES if s.switch is not None}))  # each a boolean key
_TIER_SUBNET_KEYS = {tier: f"{tier.value}Subnet" for tier in Tier}
LINK_POOL_MAX_PREFIX = 22  # room for 64 /28 links
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_NUMBER = re.compile(r"[0-9]{1,6}")  # ASCII digits only: int() would also take '٣', isdigit() '²'
MAX_JSON_DEPTH = 50  # a map-like key is one level deep; deeper is a mistake, never a crash


@dataclass(frozen=True)
class Subnets:
    flat: ipaddress.IPv4Network
    tiers: Mapping[Tier, ipaddress.IPv4Network]
    links: ipaddress.IPv4Network  # carved into /28s, one per cross-tier client link

    def dynamic_range(self, tier: Tier) -> ipaddress.IPv4Network:
        """Docker hands out addresses for extra attachments from the upper half only, so
        they never take a static address (which live in the lower half)."""
        return list(self.tiers[tier].subnets(prefixlen_diff=1))[1]


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    phase: int
    profiles: frozenset[Profile]
    bind_address: str
    expose_beyond_loopback: bool  # the user acknowledged a non-loopback bindAddress
    subnets: Subnets
    features: Features
    static_ips: Mapping[str, str]  # every catalog service -> its address
    host_ports: Mapping[tuple[str, str], int | None]  # (service, port name) -> host port
    image_tags: Mapping[str, str]  # every catalog service -> its tag
    state_dir: str  # absolute; holds <stack>/vault-init.json
    secret_id_rotation_days: int
    memory_budget_mb: int
    memory: Mapping[str, Allocation]  # every selected service -> its limit and reservation
    switches: frozenset[str] = frozenset()  # the boolean keys that are on (Service.switch)

    @property
    def redis_replicas(self) -> bool:
        return "redisReplicas" in self.switches

    @property
    def vault_init_file(self) -> str:
        return str(Path(self.state_dir) / self.stack / "vault-init.json")

    @property
    def vault_provisioner_file(self) -> str:
        """The provisioner's role_id and secret_id (strict), beside the recovery file."""
        return str(Path(self.state_dir) / self.stack / "vault-provisioner.json")

    @property
    def vault_host_address(self) -> str:
        """How `pulumi up`, on this machine, reaches Vault's published port."""
        host = self.bind_address
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        scheme = "http" if self.features.tls is TlsMode.OFF else "https"
        return f"{scheme}://{host}:{self.host_ports[(VAULT.name, vault.host_port_name(self.features.tls))]}"

    @property
    def vault_ca_file(self) -> str | None:
        """Where the CA that Vault's certificate chains to is written on this machine (TLS on)."""
        if self.features.tls is TlsMode.OFF:
            return None
        return str(Path(self.state_dir) / self.stack / "ca.pem")

    def image(self, service: Service) -> str:
        return f"{service.image}:{self.image_tags[service.name]}"

    def memory_limit(self, service: Service) -> int:
        """The container's memory limit in MiB, derived from the budget (devstack.memory)."""
        return self.memory[service.name].limit_mb

    def static_ip(self, service: Service) -> str:
        return self.static_ips[service.name]

    def host_port(self, service: Service, port_name: str) -> int | None:
        return self.host_ports[(service.name, port_name)]


def _values(raw: Mapping[str, object]) -> dict[str, str]:
    """Project keys without namespace; unknown project keys are an error."""
    values: dict[str, str] = {}
    for full_key, value in raw.items():
        namespace, _, name = full_key.partition(":")
        if namespace != PROJECT:
            continue  # provider config (docker:host, ...) is not ours to judge
        if name not in _KEYS_BY_NAME:
            raise ConfigError(full_key, f"unknown key; allowed: {', '.join(_KEYS_BY_NAME)}")
        values[name] = value if isinstance(value, str) else json.dumps(value)
    for key in CONFIG_KEYS:
        values.setdefault(key.name, key.default)
    return values


def _pairs(key: str, text: str) -> list[tuple[str, str]]:
    """`a=1,b=2` or a JSON object (structured config) -> [(a, "1"), (b, "2")]."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("{"):
        data = _json(key, text)
        assert isinstance(data, dict)  # valid JSON that starts with { is an object
        pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]
    else:
        pairs = []
        for item in text.split(","):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ConfigError(key, f"entries must look like name=value, got '{item.strip()}'")
            pairs.append((name.strip(), value.strip()))
    seen: set[str] = set()
    for name, _value in pairs:
        if name in seen:
            raise ConfigError(key, f"'{name}' is given twice; give each name once")
        seen.add(name)
    return pairs


def _json(key: str, text: str) -> object:
    """JSON from a config value, refusing nesting deeper than any key needs (json.loads would
    otherwise end in a RecursionError)."""
    depth = deepest = 0
    for char in text:  # brackets inside strings only make this stricter, never wrong for our keys
        depth += char in "[{"
        depth -= char in "]}"
        deepest = max(deepest, depth)
    if deepest > MAX_JSON_DEPTH:
        raise ConfigError(key, f"nests {deepest} levels deep; a list or a map of name: value is all it takes")

    def unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
        names = [name for name, _value in pairs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(key, f"'{twice[0]}' is given twice; give each name once")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError:
        raise ConfigError(key, "is not valid JSON") from None


def _service(key: str, name: str) -> Service:
    if name not in SERVICES_BY_NAME:
        raise ConfigError(key, f"unknown service '{name}'; allowed: {', '.join(SERVICES_BY_NAME)}")
    return SERVICES_BY_NAME[name]


def _phase(text: str) -> int:
    try:
        phase = int(text)
    except ValueError:
        phase = -1
    if not 0 <= phase <= MAX_PHASE or str(phase) != text.strip():
        raise ConfigError("phase", f"must be an integer from 0 to {MAX_PHASE}, got '{text}'")
    return phase


def _profiles(text: str) -> frozenset[Profile]:
    allowed = ", ".join(p.value for p in Profile)
    items: Iterable[object]
    if text.strip().startswith("["):
        data = _json("profiles", text)
        assert isinstance(data, list)  # valid JSON that starts with [ is a list
        items = data
    else:
        items = [item.strip() for item in text.split(",")]
    profiles = set()
    for item in items:
        try:
            profiles.add(Profile(str(item)))
        except ValueError:
            raise ConfigError("profiles", f"unknown profile '{item}'; allowed: {allowed}") from None
    if not profiles:
        raise ConfigError("profiles", f"needs at least one of {allowed}")
    return frozenset(profiles)


def _bind_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ConfigError("bindAddress", f"must be an IP address such as 127.0.0.1, got '{text}'") from None


def _exposure(bind_address: str, text: str) -> bool:
    """A bind address beyond loopback publishes Vault and every database to the network: only on
    an explicit acknowledgement."""
    words = {"true": True, "false": False}
    acknowledged = words.get(text.strip().lower())
    if acknowledged is None:
        raise ConfigError("exposeBeyondLoopback", f"must be true or false, got '{text}'")
    if not acknowledged and not ipaddress.ip_address(bind_address).is_loopback:
        raise ConfigError(
            "bindAddress",
            f"{bind_address} is not a loopback address and would publish every port to the network; "
            f"set {PROJECT}:exposeBeyondLoopback to true to accept that, or use 127.0.0.1",
        )
    return acknowledged


def exposure_warning(settings: Settings) -> str | None:
    """One line for the plan's reader whenever ports are published beyond this machine."""
    if ipaddress.ip_address(settings.bind_address).is_loopback:
        return None
    return (
        f"warning: {PROJECT}:bindAddress is {settings.bind_address} ({PROJECT}:exposeBeyondLoopback=true): "
        "every published port, Vault's included, is reachable from the network"
    )


def _subnet(key: str, text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError:
        raise ConfigError(key, f"must be an IPv4 CIDR such as 172.20.2.0/24, got '{text}'") from None


def _large_enough(key: str, network: ipaddress.IPv4Network, max_prefix: int) -> ipaddress.IPv4Network:
    if network.prefixlen > max_prefix:
        raise ConfigError(key, f"{network} is too small; use a /{max_prefix} or larger")
    return network


def _subnets(values: Mapping[str, str]) -> Subnets:
    tiers = {tier: _large_enough(key, _subnet(key, values[key]), 29) for tier, key in _TIER_SUBNET_KEYS.items()}
    ordered = list(tiers.items())
    for i, (tier_a, net_a) in enumerate(ordered):
        for tier_b, net_b in ordered[i + 1 :]:
            if net_a.overlaps(net_b):
                raise ConfigError(
                    _TIER_SUBNET_KEYS[tier_b],
                    f"{net_b} overlaps {_TIER_SUBNET_KEYS[tier_a]} {net_a}; tier subnets must be disjoint",
                )
    flat = _large_enough("flatSubnet", _subnet("flatSubnet", values["flatSubnet"]), 29)
    for tier, subnet in tiers.items():
        if not subnet.subnet_of(flat):
            # Blame the key the user changed: the flat subnet if the tier's is still the default.
            key = _TIER_SUBNET_KEYS[tier]
            blamed = "flatSubnet" if values[key] == _KEYS_BY_NAME[key].default else key
            named = "" if blamed == key else f"{key} "
            raise ConfigError(
                blamed,
                f"{named}{subnet} lies outside flatSubnet {flat}: phase 0 keeps every tier address on the "
                "flat network, so each tier subnet must lie inside flatSubnet",
            )
    links = _subnet("linkSubnet", values["linkSubnet"])
    for tier, subnet in tiers.items():
        if links.overlaps(subnet):
            raise ConfigError(
                "linkSubnet", f"{links} overlaps {_TIER_SUBNET_KEYS[tier]} {subnet}; the link pool must be apart"
            )
    _large_enough("linkSubnet", links, LINK_POOL_MAX_PREFIX)
    return Subnets(flat=flat, tiers=MappingProxyType(tiers), links=links)


def _static_ips(values: Mapping[str, str], subnets: Subnets) -> dict[str, str]:
    overrides: dict[str, ipaddress.IPv4Address] = {}
    for name, text in _pairs("staticIps", values["staticIps"]):
        _service("staticIps", name)
        try:
            overrides[name] = ipaddress.IPv4Address(text)
        except ValueError:
            raise ConfigError("staticIps", f"{name}: '{text}' is not an IPv4 address") from None
    addresses: dict[str, str] = {}
    owners = _multi_homed_addresses(subnets)
    for service in SERVICES:
        subnet = subnets.tiers[service.tier]
        subnet_key = _TIER_SUBNET_KEYS[service.tier]
        address = overrides.get(service.name)
        key = "staticIps" if address is not None else subnet_key
        if address is None:
            if service.host_id >= subnet.num_addresses - 1:
                raise ConfigError(
                    subnet_key, f"{subnet} has no room for {service.name}'s host number {service.host_id}"
                )
            address = subnet.network_address + service.host_id
        _check_usable(key, service.name, address, subnet, subnet_key)
        if address >= list(subnet.subnets(prefixlen_diff=1))[1].network_address:
            raise ConfigError(key, f"{service.name}'s address {address} must be in the lower half of {subnet}")
        # Phase 0 (the rollback target) puts the same address on the flat network.
        _check_usable(key, service.name, address, subnets.flat, "flatSubnet")
        if address in owners:
            other, other_key = owners[address]
            blame = "staticIps" if "staticIps" in (key, other_key) else key
            raise ConfigError(blame, f"{service.name} and {other} both have address {address}")
        owners[address] = (service.name, key)
        addresses[service.name] = str(address)
    return addresses


def _multi_homed_addresses(subnets: Subnets) -> dict[ipaddress.IPv4Address, tuple[str, str]]:
    """A service that joins its clients' tiers (Vault) takes its host number in each of them:
    that address is taken in every tier but its own, whichever tiers it joins today."""
    taken: dict[ipaddress.IPv4Address, tuple[str, str]] = {}
    for service in SERVICES:
        if not service.joins_client_tiers:
            continue
        for tier, subnet in subnets.tiers.items():
            if tier is not service.tier and service.host_id < subnet.num_addresses - 1:
                label = f"{service.name} (joins the {tier.value} tier as .{service.host_id})"
                taken[subnet.network_address + service.host_id] = (label, _TIER_SUBNET_KEYS[tier])
    return taken


def _check_usable(
    key: str, service: str, address: ipaddress.IPv4Address, subnet: ipaddress.IPv4Network, subnet_key: str
) -> None:
    gateway = subnet.network_address + 1  # Docker's default gateway for a bridge
    if address not in subnet:
        raise ConfigError(key, f"{service}'s address {address} is outside its subnet {subnet_key} {subnet}")
    if address in (subnet.network_address, subnet.broadcast_address, gateway):
        raise ConfigError(key, f"{service}'s address {address} is reserved in {subnet_key} {subnet}")


def _host_ports(values: Mapping[str, str], tls: TlsMode) -> dict[tuple[str, str], int | None]:
    ports = {(s.name, p.name): p.host for s in SERVICES for p in s.ports}
    given: set[tuple[str, str]] = set()
    for target, text in _pairs("hostPorts", values["hostPorts"]):
        name, _, port_name = target.partition(".")
        service = _service("hostPorts", name)
        if not port_name:
            port_name = service.ports[0].name
        if (name, port_name) not in ports:
            names = ", ".join(p.name for p in service.ports)
            raise ConfigError("hostPorts", f"{name} has no port '{port_name}'; allowed: {names}")
        if (name, port_name) in given:
            raise ConfigError("hostPorts", f"{name}.{port_name} is given twice; give each port once")
        given.add((name, port_name))
        if text.lower() == "none":
            if (name, port_name) == (VAULT.name, vault.BOOTSTRAP_PORT):
                raise ConfigError(
                    "hostPorts", f"{name}.{port_name} must stay published: `pulumi up` bootstraps Vault through it"
                )
            ports[(name, port_name)] = None
            continue
        if not _NUMBER.fullmatch(text) or not 1 <= int(text) <= 65535:
            raise ConfigError("hostPorts", f"{target}: '{text}' must be a port 1-65535 or none")
        ports[(name, port_name)] = int(text)
    # Two ports clash only if both listen in this TLS mode (vault.https exists in dual mode only).
    modes = {(s.name, p.name): p.open_in for s in SERVICES for p in s.ports}
    users: dict[int, tuple[str, str]] = {}
    for (name, port_name), host in ports.items():
        if host is None or tls not in modes[(name, port_name)]:
            continue
        if host in users:
            other = users[host]
            # Say so when the clash exists only in some TLS modes: the port was fine at phase 0.
            partial = any(modes[port] != frozenset(TlsMode) for port in (other, (name, port_name)))
            only = f" (with TLS {tls.value})" if partial else ""
            raise ConfigError(
                "hostPorts", f"{'.'.join(other)} and {name}.{port_name} both publish host port {host}{only}"
            )
        users[host] = (name, port_name)
    return ports


def _image_tags(values: Mapping[str, str]) -> dict[str, str]:
    tags = {s.name: s.tag for s in SERVICES}
    for name, tag in _pairs("imageTags", values["imageTags"]):
        _service("imageTags", name)
        if tag == "latest" or not _TAG.match(tag):
            raise ConfigError("imageTags", f"{name}: '{tag}' must be an exact version tag, never latest")
        tags[name] = tag
    return tags


def _state_dir(text: str) -> str:
    if not text.strip():
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return str(Path(base) / PROJECT)
    try:
        path = Path(text.strip()).expanduser()
    except RuntimeError:  # ~name of a user this machine does not know
        user = text.strip().split("/")[0]
        raise ConfigError("stateDir", f"{user} names no user on this machine; use an absolute path or ~/...") from None
    if not path.is_absolute():
        raise ConfigError("stateDir", f"must be an absolute path or start with ~, got '{text}'")
    return str(path)


def _rotation_days(text: str) -> int:
    # Below the secret_id lifetime (30 days), so a restart always finds a valid secret_id.
    if not _NUMBER.fullmatch(text.strip()) or not 1 <= int(text) <= 29:
        raise ConfigError("secretIdRotationDays", f"must be a whole number of days from 1 to 29, got '{text}'")
    return int(text)


def _features(phase: int, text: str) -> Features:
    return resolve_features(phase, dict(_pairs("features", text)))


def _check_vault_published(host_ports: Mapping[tuple[str, str], int | None], tls: TlsMode) -> None:
    """`pulumi up` reaches Vault through its published port: the one this TLS mode uses."""
    port = vault.host_port_name(tls)
    if host_ports[(VAULT.name, port)] is None:
        raise ConfigError("hostPorts", f"vault.{port} must stay published: `pulumi up` reaches Vault through it")


def _memory(
    text: str, profiles: frozenset[Profile], switches: frozenset[str], features: frozenset[str]
) -> tuple[int, Mapping[str, Allocation]]:
    budget = parse_size("memoryBudget", text) if text.strip() else default_budget(profiles)
    return budget, allocate("memoryBudget", services_for(profiles, switches, features), budget)


def _switches(values: Mapping[str, str]) -> frozenset[str]:
    words = {"true": True, "false": False}
    on = set()
    for key in SWITCH_KEYS:
        value = words.get(values[key].strip().lower())
        if value is None:
            raise ConfigError(key, f"must be true or false, got '{values[key]}'")
        if value:
            on.add(key)
    return frozenset(on)


def load_settings(raw: Mapping[str, object], stack: str, project: str = PROJECT) -> Settings:
    """Build and validate Settings from a stack's config map (keys like 'devstack:phase')."""
    values = _values(raw)
    phase = _phase(values["phase"])
    subnets = _subnets(values)
    features = _features(phase, values["features"])
    host_ports = _host_ports(values, features.tls)
    _check_vault_published(host_ports, features.tls)
    bind_address = _bind_address(values["bindAddress"])
    profiles = _profiles(values["profiles"])
    switches = _switches(values)
    budget, memory = _memory(values["memoryBudget"], profiles, switches, features.enabled())
    return Settings(
        project=project,
        stack=stack,
        phase=phase,
        profiles=profiles,
        bind_address=bind_address,
        expose_beyond_loopback=_exposure(bind_address, values["exposeBeyondLoopback"]),
        subnets=subnets,
        features=features,
        static_ips=MappingProxyType(_static_ips(values, subnets)),
        host_ports=MappingProxyType(host_ports),
        image_tags=MappingProxyType(_image_tags(values)),
        state_dir=_state_dir(values["stateDir"]),
        secret_id_rotation_days=_rotation_days(values["secretIdRotationDays"]),
        memory_budget_mb=budget,
        memory=memory,
        switches=switches,
    )
