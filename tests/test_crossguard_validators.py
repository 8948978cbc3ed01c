"""The CrossGuard pack's validators, one rule at a time, on hand-made inputs (camelCase, as the
engine gives them)."""

from __future__ import annotations

from typing import Any

import pytest

from policies.crossguard import validators as v
from policies.crossguard.validators import CONTAINER, PRIVATE_KEY, REMOTE_IMAGE, VOLUME, Resource

DIGEST = "sha256:" + "ab" * 32


def container(name: str = "postgres", **inputs: Any) -> Resource:
    return Resource(CONTAINER, name, inputs)


def test_ports_bind_only_the_chosen_address() -> None:
    config = {"bindAddress": "127.0.0.1"}
    good = {"internal": 5432, "external": 5432, "ip": "127.0.0.1"}
    assert v.check_ports(container(ports=[good]), config) == []
    assert v.check_ports(container(ports=[{**good, "ip": v.UNKNOWN}]), config) == []
    (missing,) = v.check_ports(container(ports=[{"internal": 5432, "external": 5432}]), config)
    assert "every interface" in missing
    (wide,) = v.check_ports(container(ports=[{**good, "ip": "0.0.0.0"}]), config)
    assert "binds 0.0.0.0, beyond the chosen bind address 127.0.0.1" in wide
    assert v.check_ports(container(ports=[{**good, "ip": "::1"}]), {"bindAddress": "0:0::1"}) == []
    assert v.check_ports(container(ports=[{**good, "ip": "0.0.0.0"}]), {"bindAddress": "0.0.0.0"}) == []


def test_a_data_volume_is_protected_and_retained() -> None:
    assert v.check_volume(Resource(VOLUME, "d", {}, protect=True, retain_on_delete=True), {}) == []
    # The engine does not tell the pack about retain_on_delete: not known is not a violation.
    assert v.check_volume(Resource(VOLUME, "d", {}, protect=True, retain_on_delete=None), {}) == []
    assert len(v.check_volume(Resource(VOLUME, "d", {}, protect=False, retain_on_delete=True), {})) == 1
    assert len(v.check_volume(Resource(VOLUME, "d", {}, protect=True, retain_on_delete=False), {})) == 1


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("postgres:18.1-bookworm", None),
        ("codeberg.org/forgejo/forgejo:1.21.11-0", None),
        ("registry.local:5000/team/app:v1.2.3", None),
        (f"postgres@{DIGEST}", None),
        (f"postgres:18@{DIGEST}", None),
        (DIGEST, None),  # an image ID, as a container gets it from its RemoteImage
        ("postgres", "has no tag"),
        ("registry.local:5000/team/app", "has no tag"),  # the port is not a tag
        ("postgres:latest", "uses latest"),
        ("postgres:18", "not an exact version"),
        ("redis:alpine", "not an exact version"),
        ("postgres@sha256:abc", "malformed digest"),
    ],
)
def test_images_are_pinned(reference: str, problem: str | None) -> None:
    found = v.image_problem(reference)
    assert (found is None) if problem is None else (found is not None and problem in found), found
    image = Resource(REMOTE_IMAGE, "i", {"name": reference})
    assert len(v.check_image(image, {})) == (0 if problem is None else 1)


def test_an_image_not_yet_known_is_skipped() -> None:
    assert v.check_image(container(image=v.UNKNOWN), {}) == []
    assert v.check_image(container(), {}) == ["no image reference in `image`"]


def test_no_vault_token_in_a_container_once_approle_is_on() -> None:
    approle = container(
        envs=["DEVSTACK_AUTH=approle", "DEVSTACK_SECRET_ID_FILE=/devstack/approle/secret-id"],
        uploads=[{"file": "/devstack/approle/secret-id", "content": v.SECRET}],
    )
    assert v.check_root_token(approle, {"approle": True}) == []
    token_mode = container(
        envs=["DEVSTACK_TOKEN_FILE=/devstack/vault-token"], uploads=[{"file": "/devstack/vault-token"}]
    )
    assert len(v.check_root_token(token_mode, {"approle": True})) == 2
    assert v.check_root_token(token_mode, {"approle": False}) == []  # phase 0 by design
    assert v.check_root_token(token_mode, {}) != []  # on unless the config says otherwise
    assert len(v.check_root_token(container(envs=["VAULT_TOKEN=s.abc"]), {})) == 1


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("POSTGRES_PASSWORD", True),
        ("MYSQL_PWD", True),
        ("RABBITMQ_DEFAULT_PASS", True),
        ("VAULT_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DEVSTACK_SECRET_ID", True),
        ("POSTGRES_PASSWORD_FILE", False),
        ("DEVSTACK_SECRET_PATH", False),
        ("DEVSTACK_SECRETS_OWNER", False),
        ("DEVSTACK_TOKEN_FILE", False),
        ("VAULT_ADDR", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert v.secret_name(name) is secret


def test_no_secret_in_environment_or_argv() -> None:
    clean = container(
        envs=["POSTGRES_PASSWORD_FILE=/run/devstack/password", "DEVSTACK_SECRETS_OWNER=postgres:postgres"],
        command=["postgres", "-c", "ssl=on"],
        healthcheck={"tests": ["CMD-SHELL", "pg_isready -U postgres"]},
    )
    assert v.check_secrets(clean, {}) == []
    cases = [
        container(envs=["POSTGRES_PASSWORD=hunter2"]),
        container(envs=[f"SOMETHING={v.SECRET}"]),
        container(envs=["DATABASE_URL=postgres://app:hunter2@postgres:5432/app"]),
        container(command=["redis-server", "--requirepass", "hunter2"]),
        container(command=["mysqld", "--password=hunter2"]),
        container(entrypoints=["/bin/sh", v.SECRET]),
        container(healthcheck={"tests": ["CMD", "redis-cli", "--pass", "hunter2", "ping"]}),
    ]
    for case in cases:
        assert len(v.check_secrets(case, {})) == 1, case.inputs
    # An empty variable holds nothing.
    assert v.check_secrets(container(envs=["REDIS_PASSWORD="]), {}) == []


@pytest.mark.parametrize(
    ("host_path", "reaches"),
    [
        ("/var/run/docker.sock", True),
        ("/run/docker.sock", True),
        ("/", True),
        ("/var/run", True),
        ("/run/", True),
        ("/var", True),
        ("/run/containerd", True),
        ("/sys", False),
        ("/var/lib/docker", False),
        ("/home/me/project", False),
    ],
)
def test_no_engine_socket(host_path: str, reaches: bool) -> None:
    mounted = container(volumes=[{"hostPath": host_path, "containerPath": "/x", "readOnly": True}])
    assert bool(v.check_engine_socket(mounted, {})) is reaches
    bound = container(mounts=[{"type": "bind", "source": host_path, "target": "/x"}])
    assert bool(v.check_engine_socket(bound, {})) is reaches
    assert v.check_engine_socket(container(volumes=[{"volumeName": "dev-x", "containerPath": "/x"}]), {}) == []


def test_no_privileged_container() -> None:
    assert v.check_privileged(container(capabilities={"adds": ["IPC_LOCK"]}), {}) == []
    assert v.check_privileged(container(privileged=False), {}) == []
    assert v.check_privileged(container(privileged=True), {}) == ["privileged=true"]
    assert len(v.check_privileged(container(networkMode="host"), {})) == 1
    assert len(v.check_privileged(container(pidMode="host"), {})) == 1
    assert len(v.check_privileged(container(capabilities={"adds": ["SYS_ADMIN"]}), {})) == 1
    assert len(v.check_privileged(container(capabilities={"adds": ["all"]}), {})) == 1


HARDENED: dict[str, Any] = {
    "securityOpts": ["no-new-privileges:true"],
    "capabilities": {"drops": ["ALL"], "adds": ["CHOWN"]},
    "user": "999:999",
    "readOnly": True,
    "pidsLimit": 128,
}


def test_hardening_when_enforced() -> None:
    on = {"enforce": True}
    assert v.check_hardening(container(**HARDENED), on) == []
    assert v.check_hardening(container(), {"enforce": False}) == []
    assert len(v.check_hardening(container(), on)) == 5
    breaks = {
        "securityOpts": [],
        "capabilities": {"drops": ["NET_ADMIN"]},
        "user": "root",
        "readOnly": False,
        "pidsLimit": 0,
    }
    for key, value in breaks.items():
        assert len(v.check_hardening(container(**{**HARDENED, key: value}), on)) == 1, key
    net_raw = {**HARDENED, "capabilities": {"drops": ["ALL"], "adds": ["NET_RAW"]}}
    assert v.check_hardening(container(**net_raw), on) == ["NET_RAW is added back"]


def test_a_pid_limit_may_come_as_a_label_set_by_docker_update() -> None:
    on = {"enforce": True}
    label = [{"label": v.PIDS_LABEL, "value": "256"}]
    without = {key: value for key, value in HARDENED.items() if key != "pidsLimit"}
    assert v.check_hardening(container(**without, labels=label), on) == []
    assert len(v.check_hardening(container(**without, labels=[{"label": v.PIDS_LABEL, "value": "x"}]), on)) == 1
    named = Resource(CONTAINER, "postgres", {**without, "labels": label, "name": "dev-postgres"})
    update = Resource(v.LOCAL_COMMAND, "postgres-pids-limit", {"create": "docker update --pids-limit 256 dev-postgres"})
    assert v.check_pids_applied([named, update], {}) == []
    (missing,) = v.check_pids_applied([named], {})
    assert missing.rule == v.RULE_PIDS
    assert "no `docker update --pids-limit 256 dev-postgres` command" in missing.message
    unnamed = Resource(CONTAINER, "postgres", {**without, "labels": label, "name": v.UNKNOWN})
    assert v.check_pids_applied([unnamed, container()], {}) == []


def test_hardening_exceptions_are_named_per_service() -> None:
    config = {"enforce": True, "exceptions": {"postgres": {"readOnly": "initdb writes /etc"}}}
    writable = {**HARDENED, "readOnly": False}
    labelled = [{"label": "devstack.service", "value": "postgres"}]
    assert v.check_hardening(container("postgres", **writable, labels=labelled), config) == []
    assert len(v.check_hardening(container("mysql", **writable), config)) == 1
    assert len(v.check_hardening(container("postgres", **{**writable, "user": "0"}), config)) == 1


@pytest.mark.parametrize(
    ("inputs", "weak"),
    [
        ({"algorithm": "ECDSA", "ecdsaCurve": "P256"}, False),
        ({"algorithm": "ECDSA", "ecdsaCurve": "P384"}, False),
        ({"algorithm": "ECDSA", "ecdsaCurve": "P224"}, True),
        ({"algorithm": "ECDSA"}, True),  # the provider's default curve is P224
        ({"algorithm": "RSA"}, False),  # the provider's default is 2048 bits
        ({"algorithm": "RSA", "rsaBits": 4096}, False),
        ({"algorithm": "RSA", "rsaBits": 1024}, True),
        ({"algorithm": "ED25519"}, False),
        ({"algorithm": "DSA"}, True),
        ({"algorithm": v.UNKNOWN}, False),
    ],
)
def test_tls_key_strength(inputs: dict[str, Any], weak: bool) -> None:
    assert bool(v.check_key(Resource(PRIVATE_KEY, "k", inputs), {})) is weak


def member(service: str, tier: str, *networks: str) -> Resource:
    return Resource(
        CONTAINER,
        service,
        {
            "labels": [{"label": "devstack.service", "value": service}, {"label": "devstack.tier", "value": tier}],
            "networksAdvanced": [{"name": n} for n in networks],
        },
        urn=f"urn:{service}",
    )


TIERS = {"tiers": {"forgejo": "app", "postgres": "data", "mysql": "data", "vault": "vault", "loki": "observability"}}


def test_tiers_share_a_network_only_along_a_flow() -> None:
    config = {**TIERS, "flows": [["forgejo", "postgres"]], "hubs": {"vault": ["app", "data"]}}
    clean = [
        member("forgejo", "app", "app-net", "link-forgejo-data"),
        member("postgres", "data", "data-net", "link-forgejo-data"),
        member("mysql", "data", "data-net"),
        member("vault", "vault", "app-net", "data-net"),
    ]
    assert v.check_tiers(clean, config) == []
    found = v.check_tiers([*clean, member("loki", "observability", "data-net")], config)
    assert {f.rule for f in found} == {v.RULE_TIERS}
    assert len(found) == 3  # postgres, mysql and Vault (which serves no observability here)
    assert "loki (observability) share network data-net without a declared flow" in found[-1].message
    mysql_too = [*clean[:2], member("mysql", "data", "link-forgejo-data")]
    assert len(v.check_tiers(mysql_too, config)) == 1
    assert v.check_tiers(mysql_too, {**config, "segmentation": False}) == []
    vault_beyond = [member("loki", "observability", "obs-net"), member("vault", "vault", "obs-net")]
    assert len(v.check_tiers(vault_beyond, config)) == 1  # Vault serves only app and data here


def test_tiers_unknowns() -> None:
    stranger = Resource(CONTAINER, "stranger", {"networksAdvanced": [{"name": "app-net"}]})
    (found,) = v.check_tiers([stranger], TIERS)
    assert "no known tier" in found.message
    pending = Resource(CONTAINER, "forgejo", {"networksAdvanced": [{"name": v.UNKNOWN}]})
    assert v.check_tiers([pending, member("postgres", "data", v.UNKNOWN)], TIERS) == []
