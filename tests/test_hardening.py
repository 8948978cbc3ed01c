"""The hardening feature from the catalog to the plan: each service's entry is checked, turned into
the container's settings, and shipped at phase 4 (the engine side: tests/test_hardening_docker)."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from devstack import hardening
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.delivery import ROLE_ID_PATH, delivery
from devstack.hardening import NO_NEW_PRIVILEGES, PIDS_LABEL, catalog_entry, container_hardening, gets_uploads
from devstack.model import DEFAULT_PIDS, Grant, Hardening, Writable
from devstack.phases import PHASE_FEATURES, TlsMode, resolve_features
from devstack.services.vault import VAULT, vault_hcl
from devstack.tls import KEY_FILE, TLS_DIR
from policies.crossguard import validators
from tests.conftest import PlanFactory, containers

ALL = "profiles=full,reference"
CADVISOR = SERVICES_BY_NAME["cadvisor"]


def test_the_feature_is_phase_4s_and_an_override() -> None:
    assert [PHASE_FEATURES[p].hardening for p in range(5)] == [False, False, False, False, True]
    assert resolve_features(1, {"hardening": "on"}).hardening
    assert not resolve_features(4, {"hardening": "off"}).hardening


def test_every_catalog_entry_is_complete_and_grants_no_forbidden_capability() -> None:
    for service in SERVICES:
        entry = catalog_entry(service)
        assert entry.user is not None or entry.root_reason, service.name
        assert all(g.reason and g.capability != "NET_RAW" for g in entry.capabilities), service.name
        assert entry.pids == DEFAULT_PIDS or entry.pids_reason, service.name


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (None, "has no hardening entry"),
        (Hardening(user=None), "without a root_reason"),
        (Hardening(user="0:0"), "is root"),
        (Hardening(user="1:1", capabilities=(Grant("CAP_NET_RAW", "ping"),)), "may not be granted"),
        (Hardening(user="1:1", capabilities=(Grant("CHOWN", ""),)), "has no reason"),
        (Hardening(user="1:1", pids=1024), "needs a reason"),
        (Hardening(user="1:1", pids=0), "needs a reason"),
    ],
)
def test_a_bad_entry_stops_the_plan(entry: Hardening | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalog_entry(dataclasses.replace(CADVISOR, hardening=entry))


def test_off_keeps_dockers_defaults_but_for_a_confined_service() -> None:
    postgres = container_hardening(SERVICES_BY_NAME["postgres"], on=False, uploads=True)
    assert postgres == hardening.ContainerHardening()
    vault = container_hardening(VAULT, on=False, uploads=True)
    assert vault.adds == ("IPC_LOCK",)
    assert vault.drops == ()
    confined = container_hardening(CADVISOR, on=False, uploads=False)
    assert (confined.user, confined.drops, confined.read_only) == ("65532:65532", ("ALL",), True)
    assert confined.security_opts == (NO_NEW_PRIVILEGES,)
    assert confined.pids_limit is None


def test_on_applies_the_entry() -> None:
    forgejo = container_hardening(SERVICES_BY_NAME["forgejo"], on=True, uploads=True)
    assert forgejo.user is None
    assert forgejo.uid is None
    assert forgejo.adds == ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "SYS_CHROOT")
    assert (forgejo.drops, forgejo.read_only, forgejo.pids_limit) == (("ALL",), False, 512)
    vault = container_hardening(VAULT, on=True, uploads=True)
    assert (vault.user, vault.uid, vault.adds) == ("100:1000", 100, ())
    assert vault.env["SKIP_SETCAP"] == "true"
    writable = dataclasses.replace(
        CADVISOR, hardening=Hardening(user="65532:65532", writable=(Writable("/tmp", "scratch", size_mb=8),))
    )
    read_only = container_hardening(writable, on=True, uploads=False)
    assert read_only.read_only
    assert read_only.tmpfs == {"/tmp": "rw,noexec,nosuid,nodev,size=8m,mode=0700,uid=65532"}
    assert container_hardening(writable, on=True, uploads=True).tmpfs == {}  # a writable root needs none
    as_root = Hardening(user=None, root_reason="r", writable=(Writable("/t", "x"),))
    root = container_hardening(dataclasses.replace(CADVISOR, hardening=as_root), on=True, uploads=False)
    assert root.tmpfs == {"/t": "rw,noexec,nosuid,nodev,size=16m,mode=0700"}


def test_uploads_and_exceptions() -> None:
    assert gets_uploads(VAULT, TlsMode.OFF, secret=False)
    assert not gets_uploads(CADVISOR, TlsMode.REQUIRED, secret=False)
    assert gets_uploads(CADVISOR, TlsMode.OFF, secret=True)
    loki = SERVICES_BY_NAME["loki"]
    assert gets_uploads(dataclasses.replace(loki, config_files=None), TlsMode.DUAL, secret=False)  # its certificate
    assert not gets_uploads(dataclasses.replace(loki, config_files=None), TlsMode.OFF, secret=False)
    own = dataclasses.replace(CADVISOR, hardening=Hardening(user="1:1", writable_root_reason="writes its binary"))
    found = hardening.exceptions((own, SERVICES_BY_NAME["vector"]), TlsMode.OFF, frozenset({"vector"}))
    assert found["cadvisor"] == {"readOnly": "writes its binary"}
    assert found["vector"]["readOnly"] == hardening.UPLOADS_REASON
    assert "DAC_READ_SEARCH" in found["vector"]["user"]


def test_the_run_as_user_owns_the_delivered_files() -> None:
    postgres = SERVICES_BY_NAME["postgres"]
    as_root = delivery(postgres, approle=True)
    assert as_root.env["DEVSTACK_SECRETS_OWNER"] == "postgres:postgres"
    assert as_root.file_owner == 0
    hardened = delivery(postgres, approle=True, run_as_uid=999)
    assert "DEVSTACK_SECRETS_OWNER" not in hardened.env  # the wrapper is not root: nothing to give away
    assert hardened.file_owner == 999
    assert hardened.tmpfs["/run/devstack"].endswith("uid=999")


def test_vault_turns_mlock_off_only_when_hardened() -> None:
    assert "disable_mlock" not in vault_hcl(VAULT)
    assert "disable_mlock = true\napi_addr" in vault_hcl(VAULT, mlock=False)


def test_the_phase_4_plan_ships_every_item(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=4")
    planned = containers(run)
    commands = {r.inputs["create"] for r in run.resources if r.type == "command:local:Command"}
    assert len(planned) == 28  # 24, node-exporter (backups), the three database exporters (on by default)
    for name, inputs in planned.items():
        service = SERVICES_BY_NAME[name.removeprefix("dev-")]
        entry = catalog_entry(service)
        assert inputs["securityOpts"] == [NO_NEW_PRIVILEGES], name
        assert inputs["capabilities"]["drops"] == ["ALL"], name
        assert inputs["capabilities"].get("adds", []) == sorted(g.capability for g in entry.capabilities), name
        assert inputs.get("user") == entry.user, name
        assert inputs["sysctls"] == {"net.ipv4.ping_group_range": "1 0"}, name  # no ICMP datagram socket
        labels = {e["label"]: e["value"] for e in inputs["labels"]}
        assert labels[PIDS_LABEL] == str(entry.pids), name
        line = shlex.join(["docker", "update", "--pids-limit", str(entry.pids), name])
        assert line == validators.pids_command(name, entry.pids)
        assert line in commands, name
        if service.name == "golang-api":
            assert "GOCACHE=/tmp/go-build" in inputs["envs"]
        uid = entry.uid
        for upload in inputs.get("uploads", []):
            if upload["file"] in (f"{TLS_DIR}/{KEY_FILE}", ROLE_ID_PATH) and uid is not None:
                assert upload["owner"] == str(uid), (name, upload["file"])
    vault = run.one("docker:index/container:Container", "vault").inputs
    config = next(u for u in vault["uploads"] if u["file"].endswith("vault.hcl"))
    assert "disable_mlock = true" in config["content"]


def test_below_phase_4_nothing_changes(shared_plan: PlanFactory) -> None:
    for name, inputs in containers(shared_plan(ALL, "phase=3")).items():
        labels = {e["label"] for e in inputs["labels"]}
        assert PIDS_LABEL not in labels, name
        assert (inputs.get("securityOpts") is not None) == (name == "dev-cadvisor"), name


def test_labels_agree_with_the_pack() -> None:
    assert hardening.PIDS_LABEL == validators.PIDS_LABEL
