"""No container of the plan can read Vault's recovery folder, another container's uploads or its
volume, on a real Docker engine.

Markers are planted where the secrets live: a recovery file in the plan's state folder on this
machine (0600 in a 0700 folder), a file uploaded into a running container (where the provider
puts the AppRole secret_id, keys and tokens), and that container's named volume. Then each
distinct confinement the plan gives a container (host mounts, user, cgroup namespace,
capabilities, read-only root, security options, privileges, host namespaces) is recreated around
the busybox placeholder image, which looks through every file it can see (but /proc, /sys and
/dev) for the planted files and reads them for the markers. A control with the old cAdvisor's
view (the state folder, as under its /rootfs, and /var/lib/docker, as root) must find all three,
so the search is known to work.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import containers
from tests.dockerlab import LABEL, docker
from tools.plan import plan_for

pytestmark = pytest.mark.real

PREFIX = f"dslab-{os.getpid()}-isolation"
# Every file it can see (but under /proc, /sys and /dev) named like a planted one is read for the
# markers: reading every file's content would take minutes once the host's / is in view.
SEARCH = (
    "cat >/dev/shm/markers && find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f"
    " \\( -name vault-init.json -o -name secret-id -o -name devstack-volume-secret \\)"
    ' -exec grep -l -F -f /dev/shm/markers {} + 2>/dev/null; echo "searched"'
)


def confinement(inputs: dict) -> tuple[str, ...]:
    """The `docker run` options that decide what a container can see of the host."""
    options: list[str] = []
    for volume in inputs.get("volumes", []):
        if "hostPath" in volume:
            mode = ":ro" if volume.get("readOnly") else ""
            options += ["-v", f"{volume['hostPath']}:{volume['containerPath']}{mode}"]
    for mount in inputs.get("mounts", []):
        if mount.get("type") == "bind":
            readonly = ",readonly" if mount.get("readOnly") else ""
            options += ["--mount", f"type=bind,src={mount['source']},dst={mount['target']}{readonly}"]
    for device in inputs.get("devices", []):
        options += ["--device", device["hostPath"]]
    capabilities = inputs.get("capabilities") or {}
    options += [f"--cap-add={c}" for c in capabilities.get("adds") or []]
    options += [f"--cap-drop={c}" for c in capabilities.get("drops") or []]
    options += [f"--security-opt={o}" for o in inputs.get("securityOpts") or []]
    for key, flag in (("user", "--user"), ("cgroupnsMode", "--cgroupns"), ("pidMode", "--pid")):
        if inputs.get(key):
            options.append(f"{flag}={inputs[key]}")
    for key, flag in (("ipcMode", "--ipc"), ("usernsMode", "--userns"), ("networkMode", "--network")):
        if inputs.get(key) == "host":
            options.append(f"{flag}=host")
    if inputs.get("readOnly"):
        options.append("--read-only")
    if inputs.get("privileged"):
        options.append("--privileged")
    return tuple(options)


@pytest.fixture
def planted(busybox_image: str, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """The state folder with a marked recovery file, and a running container whose upload and
    volume hold markers; yields the state folder and the three markers."""
    markers = [f"devstack-marker-{what}-{secrets.token_hex(12)}" for what in ("recovery", "upload", "volume")]
    state = tmp_path / "state"
    (state / "dev").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    (state / "dev" / "vault-init.json").write_text(f'{{"root_token":"{markers[0]}"}}\n')
    (state / "dev" / "vault-init.json").chmod(0o600)
    upload = tmp_path / "upload"
    (upload / "devstack" / "approle").mkdir(parents=True)
    (upload / "devstack" / "approle" / "secret-id").write_text(markers[1] + "\n")
    (upload / "data").mkdir()
    (upload / "data" / "devstack-volume-secret").write_text(markers[2] + "\n")
    victim, volume = f"{PREFIX}-victim", f"{PREFIX}-data"
    try:
        docker("volume", "create", "--label", f"{LABEL}={PREFIX}", volume)
        docker(
            "create", "--name", victim, "--label", f"{LABEL}={PREFIX}", "--network", "none",
            "-v", f"{volume}:/data", busybox_image, "/bin/sleep", "600",
        )  # fmt: skip
        # the provider's uploads use the same archive API; into /data it lands in the volume
        docker("cp", f"{upload}/devstack", f"{victim}:/")
        docker("cp", f"{upload}/data/devstack-volume-secret", f"{victim}:/data/")
        shutil.rmtree(upload)  # the container and its volume now hold the only copies
        docker("start", victim)
        yield state, markers
    finally:
        docker("rm", "-f", victim, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def search(image: str, options: tuple[str, ...], markers: list[str], name: str) -> str:
    """What a container with these options finds: the files holding a marker, one a line. The
    markers go in on stdin, never on a command line (which Docker keeps in config.v2.json)."""
    container = f"{PREFIX}-{name}"
    try:
        output = docker(
            "run", "-i", "--name", container, "--label", f"{LABEL}={PREFIX}", "--network", "none",
            *options, image, "/bin/sh", "-c", SEARCH,
            stdin="".join(f"{m}\n" for m in markers).encode(), timeout=300,
        )  # fmt: skip
    finally:
        docker("rm", "-f", container, check=False)
    assert output.rstrip().endswith("searched"), output
    return output.rstrip().removesuffix("searched")


@pytest.mark.parametrize("phase", [0, 4])
def test_no_planned_container_reads_the_recovery_folder_uploads_or_volumes(
    busybox_image: str, planted: tuple[Path, list[str]], phase: int
) -> None:
    state, markers = planted
    run = plan_for("dev", ["profiles=full,reference", f"phase={phase}", f"stateDir={state}", "databaseExporters=true"])
    planned = containers(run)
    assert len(planned) == {0: 27, 4: 28}[phase]  # 24, the three database exporters, node-exporter from phase 2
    by_confinement: dict[tuple[str, ...], list[str]] = {}
    for name, inputs in sorted(planned.items()):
        by_confinement.setdefault(confinement(inputs), []).append(name)
    assert len(by_confinement) >= 3, by_confinement  # the default, cAdvisor's and Vector's at least
    for index, (options, names) in enumerate(by_confinement.items()):
        found = search(busybox_image, options, markers, f"p{phase}-{index}")
        assert found.strip() == "", f"{names} with {options} can read: {found}"


def test_the_search_finds_what_the_old_cadvisor_could(busybox_image: str, planted: tuple[Path, list[str]]) -> None:
    """The control: root with the state folder and Docker's storage mounted (the old cAdvisor had
    both, through / and /var/lib/docker) reads every marker."""
    state, markers = planted
    options = ("-v", f"{state}:/rootfs{state}:ro", "-v", "/var/lib/docker:/var/lib/docker:ro")
    found = search(busybox_image, options, markers, "control")
    wheres = ("/state/dev/vault-init.json", "/diff/devstack/approle/secret-id", "/_data/devstack-volume-secret")
    for marker, where in zip(markers, wheres, strict=True):
        assert where in found, f"{marker.split('-')[2]} not found: {found}"
