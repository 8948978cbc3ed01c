"""Settings are validated before any resource exists; tested without mocks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack.errors import ConfigError
from devstack.model import Profile, Tier
from devstack.phases import PHASE_FEATURES, TlsMode
from devstack.settings import CONFIG_KEYS, load_settings

ROOT = Path(__file__).resolve().parent.parent


def load(**values: object):
    return load_settings({f"devstack:{k}": v for k, v in values.items()}, stack="test")


def test_defaults_are_the_phase0_baseline() -> None:
    settings = load()
    assert settings.phase == 0
    assert settings.profiles == {Profile.STANDARD}
    assert settings.bind_address == "127.0.0.1"
    assert settings.features == PHASE_FEATURES[0]
    assert str(settings.subnets.flat) == "172.20.0.0/16"
    assert str(settings.subnets.tiers[Tier.DATA]) == "172.20.2.0/24"
    assert settings.static_ips["vault"] == "172.20.1.5"
    assert settings.static_ips["postgres"] == "172.20.2.10"
    assert settings.static_ips["forgejo"] == "172.20.3.20"


def test_profiles_list_form_and_json_form() -> None:
    assert load(profiles="full,reference").profiles == {Profile.FULL, Profile.REFERENCE}
    assert load(profiles='["minimal", "reference"]').profiles == {Profile.MINIMAL, Profile.REFERENCE}
    assert load(profiles=" full , reference ").profiles == {Profile.FULL, Profile.REFERENCE}


def test_overrides_resolve_per_service() -> None:
    settings = load(
        hostPorts="postgres=15432,redis-1.tls=16390,forgejo.ssh=none",
        imageTags="postgres=18.2-bookworm",
        staticIps="mysql=172.20.2.99",
    )
    assert settings.host_ports[("postgres", "postgres")] == 15432
    assert settings.host_ports[("redis-1", "tls")] == 16390
    assert settings.host_ports[("forgejo", "ssh")] is None
    assert settings.image_tags["postgres"] == "18.2-bookworm"
    assert settings.static_ips["mysql"] == "172.20.2.99"


def test_moving_a_subnet_moves_its_services() -> None:
    settings = load(
        flatSubnet="10.40.0.0/16",
        dataSubnet="10.40.2.0/24",
        vaultSubnet="10.40.1.0/24",
        appSubnet="10.40.3.0/24",
        observabilitySubnet="10.40.4.0/24",
    )
    assert settings.static_ips["postgres"] == "10.40.2.10"


def test_features_override_the_phase_row() -> None:
    settings = load(phase=1, features="tls=off,segmentation=false")
    assert settings.features.approle is True
    assert settings.features.tls is TlsMode.OFF
    assert settings.features.segmentation is False


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"phase": "7"}, "devstack:phase", "integer from 0 to 4"),
        ({"phase": "-1"}, "devstack:phase", "integer from 0 to 4"),
        ({"phase": "one"}, "devstack:phase", "integer from 0 to 4"),
        ({"phase": "1.5"}, "devstack:phase", "integer from 0 to 4"),
        ({"profiles": "bogus"}, "devstack:profiles", "unknown profile 'bogus'"),
        ({"profiles": "full,bogus"}, "devstack:profiles", "allowed: minimal, standard, full, reference"),
        ({"profiles": ""}, "devstack:profiles", "unknown profile"),
        ({"bindAddress": "localhost"}, "devstack:bindAddress", "must be an IP address"),
        ({"unknownKey": "1"}, "devstack:unknownKey", "unknown key"),
        ({"dataSubnet": "172.20.2.0/33"}, "devstack:dataSubnet", "IPv4 CIDR"),
        ({"dataSubnet": "172.20.2.1/24"}, "devstack:dataSubnet", "IPv4 CIDR"),  # host bits set
        ({"dataSubnet": "banana"}, "devstack:dataSubnet", "IPv4 CIDR"),
        ({"appSubnet": "172.20.2.128/25"}, "devstack:appSubnet", "overlaps dataSubnet"),
        ({"flatSubnet": "172.20.0.0/30"}, "devstack:flatSubnet", "too small"),
        ({"staticIps": "postgres=172.20.3.10"}, "devstack:staticIps", "outside its subnet dataSubnet"),
        ({"staticIps": "postgres=172.20.2.1"}, "devstack:staticIps", "reserved"),
        ({"staticIps": "postgres=172.20.2.12"}, "devstack:staticIps", "both have address"),
        ({"staticIps": "nosuch=172.20.2.50"}, "devstack:staticIps", "unknown service 'nosuch'"),
        ({"staticIps": "postgres"}, "devstack:staticIps", "name=value"),
        ({"dataSubnet": "10.9.9.0/24"}, "devstack:dataSubnet", "lies outside flatSubnet"),
        ({"flatSubnet": "10.0.0.0/8"}, "devstack:flatSubnet", "vaultSubnet 172.20.1.0/24 lies outside flatSubnet"),
        ({"dataSubnet": "172.20.2.0/29"}, "devstack:dataSubnet", "no room"),
        ({"hostPorts": "mysql=5432"}, "devstack:hostPorts", "both publish host port 5432"),
        ({"hostPorts": "grafana=3000"}, "devstack:hostPorts", "both publish host port 3000"),
        ({"hostPorts": "postgres=70000"}, "devstack:hostPorts", "1-65535"),
        ({"hostPorts": "postgres.nope=1"}, "devstack:hostPorts", "has no port 'nope'"),
        ({"imageTags": "vault=latest"}, "devstack:imageTags", "never latest"),
        ({"imageTags": "vault=a b"}, "devstack:imageTags", "exact version tag"),
        ({"features": "tls=maybe"}, "devstack:features", "tls must be one of"),
        ({"features": "warp=true"}, "devstack:features", "unknown feature 'warp'"),
        ({"features": "approle=perhaps"}, "devstack:features", "true or false"),
        ({"profiles": "[minimal"}, "devstack:profiles", "is not valid JSON"),
        ({"profiles": "[]"}, "devstack:profiles", "needs at least one of"),
        ({"hostPorts": "{postgres: 1"}, "devstack:hostPorts", "not valid JSON"),
        ({"linkSubnet": "172.21.0.0/30"}, "devstack:linkSubnet", "too small"),
        ({"linkSubnet": "172.20.0.0/16"}, "devstack:linkSubnet", "overlaps vaultSubnet"),
        ({"staticIps": "postgres=banana"}, "devstack:staticIps", "not an IPv4 address"),
        ({"staticIps": "postgres=172.20.2.200"}, "devstack:staticIps", "lower half of 172.20.2.0/24"),
        ({"hostPorts": "vault=none"}, "devstack:hostPorts", "must stay published"),
        ({"stateDir": "relative/dir"}, "devstack:stateDir", "absolute path"),
        ({"secretIdRotationDays": "30"}, "devstack:secretIdRotationDays", "from 1 to 29"),
        ({"redisReplicas": "maybe"}, "devstack:redisReplicas", "true or false"),
    ],
)
def test_bad_input_names_the_key(values: dict[str, str], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**values)
    message = str(caught.value)
    assert message.startswith(f"{key}: "), message
    assert fragment in message
    assert "\n" not in message


def test_provider_namespaces_are_left_alone() -> None:
    settings = load_settings({"docker:host": "unix:///var/run/docker.sock"}, stack="test")
    assert settings.phase == 0


def test_pulumi_yaml_declares_exactly_the_keys_read() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert list(declared) == [k.name for k in CONFIG_KEYS]
    for key in CONFIG_KEYS:
        entry = declared[key.name]
        assert entry["type"] == key.type
        default = entry["default"]
        assert (str(default).lower() if isinstance(default, bool) else str(default)) == key.default
        assert entry["description"] == key.description


def test_every_stack_file_is_valid() -> None:
    for path in ROOT.glob("Pulumi.*.yaml"):
        config = yaml.safe_load(path.read_text())["config"]
        load_settings({k: str(v) for k, v in config.items()}, stack=path.stem.split(".", 1)[1])


def test_the_configuration_reference_documents_every_key_with_its_default() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for key in CONFIG_KEYS:
        default = f"`{key.default}`" if key.default else "(none)"
        assert f"| [`{key.name}`](#{key.name.lower()}) | {key.type} | {default} |" in reference, key.name


def test_vault_is_reached_through_the_bind_address() -> None:
    assert load(bindAddress="::1").vault_host_address == "http://[::1]:8200"
    assert load(bindAddress="127.0.0.3", phase="1").vault_host_address.startswith("https://127.0.0.3:")


def test_a_bad_clock_override_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack import clock

    monkeypatch.setenv("DEVSTACK_NOW", "tomorrow")
    with pytest.raises(ConfigError) as caught:
        clock.now()
    assert str(caught.value).startswith("env:DEVSTACK_NOW: must be an ISO 8601 time")
    monkeypatch.setenv("DEVSTACK_NOW", "2026-11-30T12:00:00")  # no zone: UTC
    assert clock.now().isoformat() == "2026-11-30T12:00:00+00:00"
