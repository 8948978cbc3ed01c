"""Phase 0 with Vault: bootstrap, provider, KV, one secret per service, client accounts,
the credential hand-off into containers, and the Redis cluster step (under mocks)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.credentials import client_accounts, needs_secret
from devstack.delivery import TOKEN_PATH, WRAPPER_PATH
from devstack.model import SECRETS_DIR
from tests.conftest import CONTAINER, PlanFactory, containers
from tools.engine import PlanRun, Secret, masked, unwrap
from tools.engine.provider_rules import SECRET_OUTPUTS
from tools.plan import plan_json

COMMAND = "command:local:Command"
SECRET_V2 = "vault:kv/secretV2:SecretV2"
PASSWORD = "random:index/randomPassword:RandomPassword"
PROFILES = ["minimal", "standard", "full", "reference", "full,reference"]
# ... and the management's backup and restore passwords (data too: they exist in every phase).
CREDENTIALED = {s.name for s in SERVICES if needs_secret(s, client_accounts(SERVICES))} | {"management"}


def _atoms(value: Any) -> list[str]:
    """The single values inside a secret: itself, or the fields of a JSON document."""
    if isinstance(value, str):
        try:
            document = json.loads(value)
        except ValueError:
            return [value] if "\n" not in value.strip() else []
        return _atoms(document) if isinstance(document, dict | list) else [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _atoms(v)]
    if isinstance(value, list):
        return [a for v in value for a in _atoms(v)]
    return []


def _secrets_in(value: Any) -> list[str]:
    if isinstance(value, Secret):
        return _atoms(value.value)
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secrets_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secrets_in(v)]
    return []


NOT_SECRET = {"dev_admin", "dev_database", "dev_vhost", "devadmin", "devadmin@localhost"}


def all_secret_values(run: PlanRun) -> set[str]:
    """Passwords, tokens and keys the run holds as secrets (user names aside)."""
    values: set[str] = set()
    for record in run.resources:
        values.update(_secrets_in(record.inputs))
        # Outputs the provider itself makes secret (inherited ones repeat an input's value).
        born_secret = SECRET_OUTPUTS.get(record.type, frozenset()) | set(record.options["additional_secret_outputs"])
        values.update(_secrets_in({k: v for k, v in record.outputs.items() if k in born_secret}))
    users = {a.user for a in client_accounts(SERVICES)}
    return {v for v in values if len(v) >= 16 and v not in NOT_SECRET | users and not v.startswith("user ")}


@pytest.mark.parametrize("profiles", PROFILES)
def test_phase0_plan_has_the_vault_baseline(shared_plan: PlanFactory, profiles: str) -> None:
    run = shared_plan(f"profiles={profiles}")
    types = {r.type for r in run.resources}
    assert "devstack:vault:VaultServer" in types
    assert {r.name for r in run.by_type(COMMAND)} >= {"vault-init", "vault-unseal"}
    (provider,) = run.by_type("pulumi:providers:vault")
    (kv,) = run.by_type("vault:index/mount:Mount")
    assert kv.inputs["path"] == "secret"
    assert kv.inputs["type"] == "kv"
    assert kv.inputs["options"] == {"version": "2"}
    assert kv.options["protect"] is True
    assert kv.provider.startswith(provider.urn)
    # Credentials exist for every catalog service, whatever the profile.
    assert {r.inputs["name"] for r in run.by_type(SECRET_V2)} == CREDENTIALED
    for secret in run.by_type(SECRET_V2):
        assert isinstance(secret.inputs["dataJson"], Secret)
        assert secret.provider.startswith(provider.urn)
    # Every generated password goes into Vault, where the containers read it.
    in_vault = "\n".join(unwrap(r.inputs["dataJson"]) for r in run.by_type(SECRET_V2))
    for password in run.by_type(PASSWORD):
        assert unwrap(password.outputs["result"]) in in_vault, password.name
        assert password.inputs["length"] >= 32


def test_provider_waits_for_the_bootstrap_and_holds_the_token_as_a_secret(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=minimal")
    (provider,) = run.by_type("pulumi:providers:vault")
    init = run.one(COMMAND, "vault-init")
    unseal = run.one(COMMAND, "vault-unseal")
    assert unseal.urn in provider.dependencies
    assert init.urn in unseal.dependencies  # the provider waits for both
    # the token is the one the every-run step printed (a valid one), not the first init's
    assert isinstance(provider.inputs["token"], Secret)
    assert unwrap(provider.inputs["token"]) == json.loads(unwrap(unseal.outputs["stdout"]))["root_token"]
    assert unseal.inputs["environment"]["DEVSTACK_ROOT_TOKEN"] == "keep"
    assert provider.inputs["address"] == "http://127.0.0.1:8200"
    vault = run.one(CONTAINER, "vault")
    assert vault.urn in init.dependencies
    assert "stdout" in init.options["additional_secret_outputs"]
    assert init.inputs["logging"] == "stderr"
    assert init.inputs["environment"]["DEVSTACK_VAULT_INIT_FILE"].endswith("/dev/vault-init.json")
    assert unseal.inputs["environment"]["DEVSTACK_NO_INIT"] == "1"


def test_vault_container_config_as_code(shared_plan: PlanFactory) -> None:
    vault = containers(shared_plan("profiles=minimal"))["dev-vault"]
    assert vault["command"] == ["server"]
    (config,) = vault["uploads"]
    assert config["file"] == "/vault/config/vault.hcl"
    assert 'storage "file"' in config["content"]
    assert vault["capabilities"] == {"adds": ["IPC_LOCK"]}
    assert all("/vault-keys" not in v.get("containerPath", "") for v in vault["volumes"])


@pytest.mark.parametrize("profiles", ["minimal", "full,reference"])
def test_no_secret_in_clear_anywhere_in_the_plan(shared_plan: PlanFactory, profiles: str) -> None:
    run = shared_plan(f"profiles={profiles}")
    secrets = all_secret_values(run)
    assert len(secrets) > 20
    text = json.dumps(plan_json(run))
    leaked = [s for s in secrets if s in text]
    assert not leaked, leaked[:3]


def test_containers_get_credentials_as_files_only(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=full,reference")
    secrets = all_secret_values(run)
    for record in run.by_type(CONTAINER):
        inputs = record.inputs
        env = inputs.get("envs", [])
        argv = [*inputs.get("entrypoints", []), *inputs.get("command", [])]
        assert not any(e.startswith(("VAULT_TOKEN=", "DEVSTACK_TOKEN=")) for e in env), record.name
        for value in secrets:
            assert not any(value in e for e in env), record.name
            assert not any(value in a for a in argv), record.name
        credentials = SERVICES_BY_NAME[record.name].credentials
        if credentials is not None and credentials.uploaded_because:
            # No wrapper: the image's own entrypoint, its values uploaded as 0400 secret files.
            assert inputs["entrypoints"] == list(credentials.entrypoint)
            uploads = [u for u in inputs["uploads"] if u["file"].startswith(SECRETS_DIR)]
            assert uploads
            assert all(isinstance(u["content"], Secret) and u["permissions"] == "0400" for u in uploads)
        elif record.name in CREDENTIALED:
            assert inputs["entrypoints"] == ["/bin/sh", WRAPPER_PATH]
            assert credentials is not None
            assert inputs["command"] == list(credentials.entrypoint)
            uploads = {u["file"]: u for u in inputs["uploads"]}
            token = uploads[TOKEN_PATH]
            assert isinstance(token["content"], Secret)
            assert token["permissions"] == "0400"
            assert f"DEVSTACK_SECRET_PATH={record.name}" in env
            assert "/run/devstack" in inputs["tmpfs"]


def test_each_client_has_its_own_account_not_the_admin_password(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=full,reference")
    setups = {r.name: r for r in run.by_type(COMMAND) if r.name.endswith("-accounts")}
    assert set(setups) == {"postgres-accounts", "mysql-accounts", "mongodb-accounts", "rabbitmq-accounts"}
    for setup in setups.values():
        assert isinstance(setup.inputs["stdin"], Secret)
        assert setup.inputs["create"].startswith("docker exec -i ")
    postgres_script = setups["postgres-accounts"].inputs["stdin"].value
    for role in ("forgejo", "pgbouncer", "reference_api", "vector"):
        assert f'"{role}"' in postgres_script or f" {role} " in postgres_script, role
    # The admin password of postgres is in postgres's secret only, not in any client's.
    secrets = {r.inputs["name"]: json.loads(r.inputs["dataJson"].value) for r in run.by_type(SECRET_V2)}
    admin = secrets["postgres"]["password"]
    for name, data in secrets.items():
        if name != "postgres":
            assert admin not in data.values(), name
    assert secrets["forgejo"]["postgres_user"] == "forgejo"
    assert secrets["forgejo"]["postgres_password"] not in {admin, secrets["api-first"].get("postgres_password")}
    # Forgejo starts only after its account exists.
    forgejo = run.one(CONTAINER, "forgejo")
    assert setups["postgres-accounts"].urn in forgejo.dependencies


def test_redis_nodes_hold_only_verifiers_of_client_passwords(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=full,reference")
    secrets = {r.inputs["name"]: json.loads(r.inputs["dataJson"].value) for r in run.by_type(SECRET_V2)}
    node = secrets["redis-1"]
    assert node["password"] == secrets["redis-2"]["password"] == secrets["redis-3"]["password"]
    acl = node["users_acl"]
    assert acl.startswith("user default on #")
    exporter_password = secrets["redis-exporter-1"]["redis_password"]
    api_password = secrets["reference-api"]["redis_password"]
    assert exporter_password not in acl
    assert api_password not in acl
    assert "user redis_exporter_1 " in acl
    assert "user reference_api " in acl
    assert "user redis_exporter_2 " not in acl  # each exporter only on its own node


@pytest.mark.parametrize(("profiles", "cluster"), [("minimal", False), ("standard", True), ("full", True)])
def test_redis_cluster_step_only_with_three_nodes(shared_plan: PlanFactory, profiles: str, cluster: bool) -> None:
    run = shared_plan(f"profiles={profiles}")
    steps = [r for r in run.by_type(COMMAND) if r.name == "redis-cluster-create"]
    conf = next(u for u in containers(run)["dev-redis-1"]["uploads"] if u["file"] == "/devstack/redis.conf")
    assert ("cluster-enabled yes" in conf["content"]) is cluster
    if not cluster:
        assert steps == []
        return
    (step,) = steps
    nodes = [run.one(CONTAINER, f"redis-{n}") for n in (1, 2, 3)]
    for node in nodes:
        assert node.urn in step.dependencies
    assert step.inputs["create"].endswith("172.20.2.13:6379 172.20.2.16:6379 172.20.2.17:6379")
    assert isinstance(step.inputs["environment"]["REDISCLI_AUTH"], Secret)


def test_root_token_is_exported_only_as_a_secret(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=minimal")
    assert isinstance(run.outputs["vaultRootToken"], Secret)
    assert masked(run.outputs)["vaultRootToken"] == "[secret]"


@pytest.mark.parametrize("phase", [0, 1, 4])
def test_bootstrap_checks_the_container_behind_the_address_first(shared_plan: PlanFactory, phase: int) -> None:
    """Both bootstrap steps name Vault's container and the container port published at the
    address they use, so the script checks with `docker port` before sending a key
    (tests/test_vault_bootstrap_docker.py runs that check against a real container)."""
    run = shared_plan("profiles=minimal", f"phase={phase}")
    vault = run.one(CONTAINER, "vault")
    published = {(p.get("ip"), p["external"]): p["internal"] for p in unwrap(vault.inputs)["ports"]}
    for step in ("vault-init", "vault-unseal"):
        environment = run.one(COMMAND, step).inputs["environment"]
        assert environment["DEVSTACK_VAULT_CONTAINER"] == vault.id
        host, port = environment["VAULT_ADDR"].split("://")[1].rsplit(":", 1)
        assert published[(host, int(port))] == int(environment["DEVSTACK_VAULT_CONTAINER_PORT"])


@pytest.mark.parametrize("phase", [0, 1, 2, 3, 4])
def test_a_file_audit_device_on_its_own_volume_from_the_operations_features(
    shared_plan: PlanFactory, phase: int
) -> None:
    """From phase 2 (the backups feature) Vault writes every request and response to a file on
    the dev-vault-audit volume, which is protected like every data volume. Below it, no device."""
    run = shared_plan("profiles=minimal", f"phase={phase}")
    devices = run.by_type("vault:index/audit:Audit")
    vault = unwrap(run.one(CONTAINER, "vault").inputs)
    mounts = {v["volumeName"]: v["containerPath"] for v in vault["volumes"] if "volumeName" in v}
    assert mounts["dev-vault-audit"] == "/vault/logs"
    assert mounts["dev-vault-data"] == "/vault/data"
    volume = run.one("docker:index/volume:Volume", "vault-audit")
    assert volume.options["protect"]
    assert volume.options["retain_on_delete"]
    if phase < 2:
        assert devices == []
        return
    (device,) = devices
    assert device.inputs["type"] == "file"
    assert device.inputs["options"] == {"file_path": "/vault/logs/audit.log"}
    (provider,) = run.by_type("pulumi:providers:vault")
    assert device.provider.startswith(provider.urn)
    assert run.one(COMMAND, "vault-unseal").urn in provider.dependencies


def test_the_audit_device_follows_the_feature_not_the_phase(shared_plan: PlanFactory) -> None:
    assert shared_plan("profiles=minimal", "phase=1", "features=backups=true").by_type("vault:index/audit:Audit")
    assert not shared_plan("profiles=minimal", "phase=4", "features=backups=false").by_type("vault:index/audit:Audit")


def test_walking_from_strict_down_to_phase0_and_back(shared_plan: PlanFactory) -> None:
    """4 -> 3 -> 2 -> 1 -> 0 -> 4 on the offline plan: the audit device goes below phase 2 and
    comes back; vaultRootToken is exported below strict only; no step deletes or replaces a
    volume, the KV mount or a service's secret."""
    from tools.diff import diff_plans

    walk = [4, 3, 2, 1, 0, 4]
    runs = [shared_plan("profiles=minimal", f"phase={phase}") for phase in walk]
    for phase, run in zip(walk, runs, strict=True):
        assert ("vaultRootToken" in run.outputs) is (phase < 4), phase
        assert bool(run.by_type("vault:index/audit:Audit")) is (phase >= 2), phase
    kept = {"docker:index/volume:Volume", "vault:index/mount:Mount", "vault:kv/secretV2:SecretV2"}
    for i in range(len(walk) - 1):
        (before, old), (after, new) = (walk[i], runs[i]), (walk[i + 1], runs[i + 1])
        diff = diff_plans(old, new)
        touched = [c for c in diff.of("delete") + diff.of("replace") if c.type in kept]
        assert touched == [], (before, after, touched)
        audit = [c.action for c in diff.changes if c.type == "vault:index/audit:Audit"]
        assert audit == (["delete"] if (before, after) == (2, 1) else ["create"] if (before, after) == (0, 4) else [])
