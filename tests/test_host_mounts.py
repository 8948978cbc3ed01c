"""No container can reach the host's secrets through a mount: checked on the offline plan for
every phase and every profile.

What must stay out of every container: the state folder (Vault's recovery file, the CA), the
Pulumi state and passphrase (~/.pulumi, ~/.config/devstack), the Docker socket, and Docker's
storage (every container's layers, where its uploads such as the AppRole secret_id, private key
and token live, and every volume). A host path may not be one of these, lie inside one, or hold
one (/, /home, /var/lib/docker, ...). The one view under /var/lib/docker allowed is
containers/ (the engine's log files, for Vector), read-only. No container may get the host's
process table either (pid=host would open /proc/<pid>/root of every container), nor run
privileged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from devstack.model import Profile
from tests.conftest import PlanFactory, containers
from tools.engine import PlanRun

COMMAND = "command:local:Command"
DOCKER_ROOT = PurePosixPath("/var/lib/docker")
LOG_VIEW = DOCKER_ROOT / "containers"  # the engine's json-file logs: no layer, no volume
PHASES = range(5)
PROFILES = [*(p.value for p in Profile), "full,reference"]


def secret_places(run: PlanRun) -> list[PurePosixPath]:
    """The host paths no container may see, for this plan (its state folder comes from its config)."""
    init_file = PurePosixPath(run.one(COMMAND, "vault-init").inputs["environment"]["DEVSTACK_VAULT_INIT_FILE"])
    home = PurePosixPath(Path.home())
    places = [
        init_file.parent.parent,  # stateDir: every stack's recovery file and CA
        home / ".pulumi",  # the stack's state, its backups and history
        home / ".config" / "devstack",  # the passphrase (the README's place for it)
        DOCKER_ROOT,  # layers, volumes, the engine's own state
        PurePosixPath("/var/run/docker.sock"),
        PurePosixPath("/run/docker.sock"),
    ]
    return list(dict.fromkeys(places))


def host_paths(inputs: dict) -> Iterator[tuple[str, bool]]:
    """Every host path a container's inputs mount, with whether it is read-only."""
    for volume in inputs.get("volumes", []):
        if "hostPath" in volume:
            yield volume["hostPath"], bool(volume.get("readOnly"))
    for mount in inputs.get("mounts", []):
        if mount.get("type", "volume") == "bind":
            yield mount["source"], bool(mount.get("readOnly"))
    for device in inputs.get("devices", []):
        yield device["hostPath"], False


def reaches(path: PurePosixPath, places: list[PurePosixPath]) -> list[PurePosixPath]:
    """The secret places `path` holds or lies in (the log view under Docker's root excepted)."""
    found = []
    for place in places:
        if place == path or place.is_relative_to(path):
            found.append(place)  # the mount holds it: /, a parent, the place itself
        elif path.is_relative_to(place) and not (place == DOCKER_ROOT and path.is_relative_to(LOG_VIEW)):
            found.append(place)  # the mount is a part of it
    return found


def test_the_rule_catches_what_it_must() -> None:
    places = [PurePosixPath("/home/u/.config/devstack"), DOCKER_ROOT]
    for bad in ("/", "/home", "/home/u/.config/devstack/dev", "/var", "/var/lib/docker", "/var/lib/docker/volumes"):
        assert reaches(PurePosixPath(bad), places), bad
    for fine in ("/var/lib/docker/containers", "/srv/data", "/home/u/.config/other"):
        assert not reaches(PurePosixPath(fine), places), fine


def assert_no_secret_mounts(run: PlanRun) -> None:
    places = secret_places(run)
    planned = containers(run)
    assert planned
    for name, inputs in planned.items():
        for path, read_only in host_paths(inputs):
            assert read_only, f"{name} mounts {path} writable"
            found = reaches(PurePosixPath(path), places)
            assert not found, f"{name} mounts {path}, which reaches {[str(p) for p in found]}"
        assert not inputs.get("privileged"), name
        for namespace in ("pidMode", "ipcMode", "networkMode", "usernsMode"):
            assert inputs.get(namespace) != "host", (name, namespace)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("profiles", PROFILES)
def test_no_container_mounts_a_host_path_with_secrets(shared_plan: PlanFactory, phase: int, profiles: str) -> None:
    # The dev stack is phase 0: asking for exactly its config shares the plan with other tests.
    run = shared_plan(f"profiles={profiles}") if phase == 0 else shared_plan(f"profiles={profiles}", f"phase={phase}")
    assert str(run.config["devstack:phase"]) == str(phase)
    assert_no_secret_mounts(run)


@pytest.mark.parametrize("phase", [0, 4])
def test_a_custom_state_folder_is_kept_out_too(shared_plan: PlanFactory, phase: int) -> None:
    run = shared_plan("profiles=full,reference", f"phase={phase}", "stateDir=/srv/devstack-state")
    assert PurePosixPath("/srv/devstack-state") in secret_places(run)
    assert_no_secret_mounts(run)


@pytest.mark.parametrize("phase", PHASES)
def test_cadvisor_reads_cgroups_only(shared_plan: PlanFactory, phase: int) -> None:
    """Its metrics come from the host's cgroup tree, read-only, with nothing else of the host's:
    no host path at all, no root, no capability, a read-only root filesystem, no published port."""
    cadvisor = containers(shared_plan("profiles=full,reference", f"phase={phase}"))["dev-cadvisor"]
    assert list(host_paths(cadvisor)) == []
    assert cadvisor["cgroupnsMode"] == "host"
    assert cadvisor["user"].split(":")[0] not in ("", "0", "root")
    assert cadvisor["capabilities"] == {"drops": ["ALL"]}
    assert cadvisor["readOnly"] is True
    assert cadvisor["securityOpts"] == ["no-new-privileges:true"]
    assert cadvisor.get("ports", []) == []
    assert cadvisor["command"] == ["--enable_metrics=cpu,memory,diskIO"]
