"""The catalog is complete and self-consistent; profiles select the right services."""

from __future__ import annotations

import re

import pytest

from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.model import Profile
from devstack.settings import load_settings
from devstack.topology import selected_services

EXPECTED = {
    "vault",
    "postgres",
    "pgbouncer",
    "mysql",
    "redis-1",
    "redis-2",
    "redis-3",
    "rabbitmq",
    "mongodb",
    "forgejo",
    "reference-api",
    "api-first",
    "golang-api",
    "nodejs-api",
    "rust-api",
    "prometheus",
    "grafana",
    "loki",
    "redis-exporter-1",
    "redis-exporter-2",
    "redis-exporter-3",
    "node-exporter",
    "cadvisor",
    "vector",
    "alertmanager",
    "postgres-exporter",  # databaseExporters, on by default
    "mysql-exporter",
    "pgbouncer-exporter",
}
MINIMAL = {"vault", "postgres", "pgbouncer", "forgejo", "redis-1"}
STANDARD = MINIMAL | {"mysql", "redis-2", "redis-3", "rabbitmq", "mongodb"}
OBSERVABILITY = (
    {"prometheus", "alertmanager", "grafana", "loki", "cadvisor", "vector"}
    | {f"redis-exporter-{n}" for n in (1, 2, 3)}
    | {"node-exporter"}
    | {"postgres-exporter", "mysql-exporter", "pgbouncer-exporter"}  # databaseExporters, on by default
)
APIS = {"reference-api", "api-first", "golang-api", "nodejs-api", "rust-api"}
EXACT_TAG = re.compile(r"^v?\d+(\.\d+){1,3}([-.][A-Za-z0-9.]+)*$")


def selection(profiles: str) -> set[str]:
    # Phase 2: every feature a service waits for (node-exporter: backups) is on.
    settings = load_settings({"devstack:profiles": profiles, "devstack:phase": "2"}, stack="test")
    return {s.name for s in selected_services(settings)}


REPLICAS = {"redis-4", "redis-5", "redis-6"}
DATABASE_EXPORTERS = {"postgres-exporter", "mysql-exporter", "pgbouncer-exporter"}


def test_the_27_services_and_the_optional_replicas() -> None:
    assert len(SERVICES) == 31
    assert set(SERVICES_BY_NAME) == EXPECTED | REPLICAS
    # never without redisReplicas / databaseExporters
    assert {s.name for s in SERVICES if s.switch} == REPLICAS | DATABASE_EXPORTERS


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [("minimal", MINIMAL), ("standard", STANDARD | REPLICAS), ("full,reference", EXPECTED | REPLICAS)],
)
def test_replicas_join_the_cluster_profiles_with_their_key(profiles: str, expected: set[str]) -> None:
    config = {"devstack:profiles": profiles, "devstack:redisReplicas": "true", "devstack:phase": "2"}
    settings = load_settings(config, stack="test")
    assert {s.name for s in selected_services(settings)} == expected


def test_the_database_exporters_come_with_their_key() -> None:
    config = {"devstack:profiles": "full"}  # on by default
    assert {s.name for s in selected_services(load_settings(config, stack="test"))} >= DATABASE_EXPORTERS
    off = {**config, "devstack:databaseExporters": "false"}
    assert not DATABASE_EXPORTERS & {s.name for s in selected_services(load_settings(off, stack="test"))}
    config["devstack:profiles"] = "standard"  # full profile only
    assert not DATABASE_EXPORTERS & {s.name for s in selected_services(load_settings(config, stack="test"))}


@pytest.mark.parametrize(
    ("config", "runs"),
    [
        ({"devstack:phase": "1"}, False),
        ({"devstack:phase": "2"}, True),
        ({"devstack:phase": "1", "devstack:features": "backups=true"}, True),
        ({"devstack:phase": "4", "devstack:features": "backups=false"}, False),
    ],
)
def test_node_exporter_comes_with_the_backups_feature(config: dict[str, str], runs: bool) -> None:
    settings = load_settings({"devstack:profiles": "full", **config}, stack="test")
    assert ("node-exporter" in {s.name for s in selected_services(settings)}) is runs
    assert ("node-exporter" in settings.memory) is runs  # its memory share with it


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ("minimal", MINIMAL),
        ("standard", STANDARD),
        ("full", STANDARD | OBSERVABILITY),
        ("full,reference", EXPECTED),
        ("standard,reference", STANDARD | APIS),
        # The APIs need mysql to start; minimal lacks it, so the selection pulls it in.
        ("minimal,reference", MINIMAL | APIS | {"mysql"}),
        ("reference", {"vault", "postgres", "mysql"} | APIS),
    ],
)
def test_profile_selection(profiles: str, expected: set[str]) -> None:
    assert selection(profiles) == expected


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_entry_is_well_formed(service) -> None:
    assert service.tag != "latest"
    assert EXACT_TAG.match(service.tag), service.tag
    assert ":" not in service.image.rsplit("/", 1)[-1], "the tag lives in `tag`, not in `image`"
    assert service.container_name == f"dev-{service.name}"
    assert service.healthcheck.test[0] in ("CMD", "CMD-SHELL")
    assert service.limits.cpus > 0
    assert service.limits.floor_mb >= 32
    assert service.limits.weight >= 0
    assert 1 < service.host_id < 255
    assert len({p.name for p in service.ports}) == len(service.ports)
    for dependency in service.depends_on:
        assert dependency in SERVICES_BY_NAME
    for flow in service.flows:
        assert flow.to != service.name
        SERVICES_BY_NAME[flow.to].port(flow.port)  # raises if the port is not declared
    for mount in service.volumes:
        assert mount.path.startswith("/")


def test_static_ips_and_default_host_ports_are_unique() -> None:
    addresses = [(s.tier, s.host_id) for s in SERVICES]
    assert len(addresses) == len(set(addresses))
    host_ports = [p.host for s in SERVICES for p in s.ports if p.host is not None]
    assert len(host_ports) == len(set(host_ports))


def test_vault_is_always_on_and_every_profile_is_used() -> None:
    assert SERVICES_BY_NAME["vault"].profiles == frozenset()
    used = set().union(*(s.profiles for s in SERVICES))
    assert used == set(Profile)


def test_volumes_are_not_shared() -> None:
    names = [m.volume for s in SERVICES for m in s.volumes]
    assert len(names) == len(set(names))


def test_a_service_module_the_catalog_names_must_exist() -> None:
    from devstack import services

    assert services.postgres.__name__ == "devstack.services.postgres"  # imported on first use
    with pytest.raises(AttributeError, match=r"no service module devstack/services/nosuch\.py"):
        _ = services.nosuch
    with pytest.raises(AttributeError):
        _ = services._private
