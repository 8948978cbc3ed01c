"""The baseline resource graph under mocks: components, containers, networks, volumes."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex

import pytest

from devstack.catalog import SERVICES_BY_NAME
from tests.conftest import CONTAINER, NETWORK, VOLUME, PlanFactory, containers
from tools.engine import unwrap

ALL = "profiles=full,reference"
TOKEN = re.compile(r"^devstack:[a-z]+:[A-Z][A-Za-z]+$")


def test_full_plan_has_the_24_containers_with_their_networks_and_volumes(shared_plan: PlanFactory) -> None:
    run = shared_plan(f"--set={ALL}".removeprefix("--set="))
    by_name = containers(run)
    # every catalog service but those behind a switch off by default (redisReplicas; the database
    # exporters' databaseExporters is on) or a feature phase 0 lacks (node-exporter: backups)
    assert set(by_name) == {
        f"dev-{s.name}"
        for s in SERVICES_BY_NAME.values()
        if s.switch in (None, "databaseExporters") and s.feature is None
    }
    for name, inputs in by_name.items():
        service = SERVICES_BY_NAME[name.removeprefix("dev-")]
        (attachment,) = inputs["networksAdvanced"]
        assert attachment["name"] == "dev-network"
        assert attachment["aliases"] == [service.name]
        assert ipaddress.ip_address(attachment["ipv4Address"]) in ipaddress.ip_network("172.20.0.0/16")
        mounted = {v["volumeName"]: v["containerPath"] for v in inputs.get("volumes", []) if "volumeName" in v}
        assert mounted == {f"dev-{m.volume}": m.path for m in service.volumes}


def test_minimal_profile_runs_exactly_five_containers(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=minimal")
    assert set(containers(run)) == {"dev-vault", "dev-postgres", "dev-pgbouncer", "dev-forgejo", "dev-redis-1"}


def test_one_flat_network_at_phase0(shared_plan: PlanFactory) -> None:
    (network,) = shared_plan(ALL).by_type(NETWORK)
    assert network.inputs["name"] == "dev-network"
    assert network.inputs["ipamConfigs"] == [{"subnet": "172.20.0.0/16", "gateway": "172.20.0.1"}]
    assert network.options["delete_before_replace"] is True


def test_every_volume_is_protected_and_retained_in_every_profile(shared_plan: PlanFactory) -> None:
    minimal, full = shared_plan("profiles=minimal"), shared_plan(ALL)
    assert {v.urn for v in minimal.by_type(VOLUME)} == {v.urn for v in full.by_type(VOLUME)}
    for volume in full.by_type(VOLUME):
        assert volume.options["protect"] is True
        assert volume.options["retain_on_delete"] is True
        assert volume.inputs["name"] == f"dev-{volume.name}"


def test_no_port_binds_all_interfaces_by_default(shared_plan: PlanFactory) -> None:
    published = [p for inputs in containers(shared_plan(ALL)).values() for p in inputs.get("ports", [])]
    assert published, "the full plan publishes ports"
    assert {p["ip"] for p in published} == {"127.0.0.1"}


def test_bind_address_and_host_port_overrides_reach_the_container(shared_plan: PlanFactory) -> None:
    ports = containers(shared_plan("bindAddress=10.0.5.5", "exposeBeyondLoopback=true", "hostPorts=postgres=15432"))[
        "dev-postgres"
    ]["ports"]
    assert ports == [{"internal": 5432, "external": 15432, "ip": "10.0.5.5", "protocol": "tcp"}]


def test_tls_ports_only_exist_when_tls_is_on(shared_plan: PlanFactory) -> None:
    off = containers(shared_plan("profiles=standard"))["dev-redis-1"]["ports"]
    dual = containers(shared_plan("profiles=standard", "features=tls=dual"))["dev-redis-1"]["ports"]
    assert [p["internal"] for p in off] == [6379]
    assert [p["internal"] for p in dual] == [6379, 6380]


def test_images_are_pinned_exact_tags(shared_plan: PlanFactory) -> None:
    images = shared_plan(ALL).by_type("docker:index/remoteImage:RemoteImage")
    assert len(images) == 27  # phase 0: no node-exporter (backups); the three database exporters (on)
    for image in images:
        reference = image.inputs["name"]
        repository, _, tag = reference.rpartition(":")
        assert repository, reference
        assert "/" not in tag, reference
        assert tag != "latest", reference
        assert re.match(r"^v?\d", tag), reference
        assert image.inputs["keepLocally"] is True


def test_image_tag_override_changes_the_image(shared_plan: PlanFactory) -> None:
    run = shared_plan("imageTags=postgres=18.2-bookworm")
    assert run.one("docker:index/remoteImage:RemoteImage", "postgres-image").inputs["name"] == "postgres:18.2-bookworm"


def test_container_runtime_settings(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL)
    for record in run.by_type(CONTAINER):
        service = SERVICES_BY_NAME[record.name]
        inputs = record.inputs
        assert inputs["restart"] == "unless-stopped"
        assert inputs["logDriver"] == "json-file"
        assert inputs["logOpts"] == {"max-size": "10m", "max-file": "3", "labels": "devstack.service"}
        assert inputs["memory"] >= service.limits.floor_mb
        assert inputs["memoryReservation"] == service.limits.floor_mb
        assert float(inputs["cpus"]) == service.limits.cpus
        assert inputs["healthcheck"]["tests"] == list(service.healthcheck.test)
        assert inputs["hostname"] == service.name
        assert record.options["delete_before_replace"] is True
        # The image input is the pulled image's id, so the container follows a re-pinned tag.
        image = run.one("docker:index/remoteImage:RemoteImage", f"{service.name}-image")
        assert inputs["image"] == image.outputs["imageId"]
        assert image.urn in record.dependencies


def test_start_order_follows_depends_on(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL)
    urn = {r.name: r.urn for r in run.by_type(CONTAINER)}
    # "Vault healthy" means unsealed: dependants wait for the unseal step, not the container.
    urn["vault"] = run.one("command:local:Command", "vault-unseal").urn
    for record in run.by_type(CONTAINER):
        for dependency in SERVICES_BY_NAME[record.name].depends_on:
            assert urn[dependency] in record.dependencies, (record.name, dependency)


def test_host_binds_are_read_only_and_never_the_docker_socket(shared_plan: PlanFactory) -> None:
    for inputs in containers(shared_plan(ALL)).values():
        for mount in inputs.get("volumes", []):
            if "hostPath" in mount:
                assert mount["readOnly"] is True
                assert "docker.sock" not in mount["hostPath"]


def test_components_are_typed_parented_and_register_outputs(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL)
    components = [r for r in run.resources if not r.custom and r.type != "pulumi:pulumi:Stack"]
    assert {r.type for r in components} == {
        "devstack:platform:Platform",
        "devstack:network:NetworkTopology",
        "devstack:volumes:DataVolumes",
        "devstack:service:ServiceContainer",
        "devstack:vault:VaultServer",
        "devstack:secrets:ServiceSecret",
        "devstack:accounts:AccountSetup",
        "devstack:redis:RedisCluster",
    }
    by_urn = {r.urn: r for r in run.resources}
    for component in components:
        assert TOKEN.match(component.type)
        assert component.outputs, f"{component.type} registers its outputs"
    for record in run.resources:
        if record.custom:
            assert by_urn[record.parent].type.startswith("devstack:"), record.urn


@pytest.mark.parametrize("profiles", ["minimal", "standard", "full", "reference", "full,reference"])
def test_stack_outputs_describe_the_endpoints(shared_plan: PlanFactory, profiles: str) -> None:
    run = shared_plan(f"profiles={profiles}")
    endpoints = run.outputs["endpoints"]
    assert set(endpoints) == {name.removeprefix("dev-") for name in containers(run)}
    assert endpoints["vault"] == {
        "container": "dev-vault",
        "address": "172.20.1.5",
        "ports": {"api": "127.0.0.1:8200"},
    }
    assert run.outputs["phase"] == 0


def test_bad_config_stops_before_any_resource(plan: PlanFactory) -> None:
    import pulumi

    with pytest.raises(pulumi.RunError, match=r"^devstack:phase: must be an integer from 0 to 4, got '7'$"):
        plan("phase=7")


def test_account_steps_hold_no_secret_in_their_command_or_environment(shared_plan: PlanFactory) -> None:
    """The steps run `docker exec` with the script on stdin: no environment (MySQL's root password
    is read from the container's own file), every secret value absent from the command line,
    and what the client prints kept as a secret."""
    run = shared_plan(ALL)
    steps = [r for r in run.by_type("command:local:Command") if r.name.endswith("-accounts")]
    assert {r.name for r in steps} >= {"postgres-accounts", "mysql-accounts", "mongodb-accounts"}
    passwords = [
        value
        for secret in run.by_type("vault:kv/secretV2:SecretV2")
        for value in json.loads(unwrap(secret.inputs["dataJson"])).values()
        if len(value) >= 16
    ]
    assert passwords
    for step in steps:
        assert not step.inputs.get("environment"), step.name
        assert not [p for p in passwords if p in step.inputs["create"]], step.name
        assert set(step.options["additional_secret_outputs"]) == {"stdout", "stderr"}, step.name
        assert step.inputs["logging"] == "stderr", step.name
    mysql = next(r for r in steps if r.name == "mysql-accounts")
    assert shlex.split(mysql.inputs["create"])[:6] == ["docker", "exec", "-i", "-u", "mysql", "dev-mysql"]
