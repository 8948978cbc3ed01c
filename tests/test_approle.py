"""Phase 1a: an AppRole identity per container, least-privilege policies, no root token."""

from __future__ import annotations

import json

import pytest

from components.identity import POLICY_DIR
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.credentials import client_accounts, needs_secret
from devstack.delivery import ROLE_ID_PATH, SECRET_ID_PATH, TOKEN_PATH
from devstack.model import SECRETS_DIR
from tests.conftest import CONTAINER, PlanFactory, containers
from tests.plancache import own_plan
from tools.access import ESCALATIONS, access_matrix, render_matrix
from tools.diff import diff_plans
from tools.engine import Secret, unwrap
from tools.plan import main as plan_main
from tools.vault_acl import PolicyError, capabilities, matches, merge, parse_policy

ROLE = "vault:appRole/authBackendRole:AuthBackendRole"
SECRET_ID = "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId"
POLICY = "vault:index/policy:Policy"
IDENTITIES = {s.name for s in SERVICES if needs_secret(s, client_accounts(SERVICES))} | {"management"}
PROVISIONER = "provisioner"  # the Vault provider's own login at strict (tests/test_provisioner.py)


# --- Vault's matching rules -----------------------------------------------------------------


def test_path_matching() -> None:
    assert matches("secret/data/postgres", "secret/data/postgres")
    assert not matches("secret/data/postgres", "secret/data/postgres2")
    assert matches("secret/data/post*", "secret/data/postgres")
    assert matches("secret/data/*", "secret/data/a/b")
    assert not matches("secret/data/postgres/*", "secret/data/postgres")
    assert matches("secret/+/postgres", "secret/data/postgres")
    assert not matches("secret/+/postgres", "secret/data/x/postgres")
    assert matches("secret/+/+", "secret/data/mysql")
    assert matches("+/data/*", "secret/data/mysql")


def test_most_specific_rule_wins_and_deny_refuses() -> None:
    acl = merge(
        [
            parse_policy('path "secret/*" { capabilities = ["read", "list"] }'),
            parse_policy('path "secret/data/mysql" { capabilities = ["deny"] }'),
            parse_policy('path "secret/data/+" { capabilities = ["update"] }'),
        ]
    )
    assert capabilities(acl, "secret/data/mysql") == frozenset()  # exact deny beats the globs
    assert capabilities(acl, "secret/data/postgres") == {"update"}  # `+` later than `*` is more specific
    assert capabilities(acl, "secret/metadata/x") == {"read", "list"}
    assert capabilities(acl, "sys/mounts") == frozenset()


def test_policies_merge_per_path() -> None:
    acl = merge(
        [
            parse_policy('path "secret/data/a" { capabilities = ["read"] }'),
            parse_policy('path "secret/data/a" { capabilities = ["update"] }'),
        ]
    )
    assert capabilities(acl, "secret/data/a") == {"read", "update"}


@pytest.mark.parametrize(
    "text",
    ['path "x" { capabilities = ["fly"] }', 'path "a/*/b" { capabilities = ["read"] }', "path {", 'role "x" {}'],
)
def test_bad_policy_documents_are_rejected(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)


# --- the reviewed policy documents ----------------------------------------------------------


def test_one_policy_document_per_identity() -> None:
    assert {p.stem for p in POLICY_DIR.glob("*.hcl")} == IDENTITIES | {PROVISIONER}


@pytest.mark.parametrize("identity", sorted(IDENTITIES))
def test_policy_grants_nothing_under_sys_auth_or_write(identity: str) -> None:
    rules = parse_policy((POLICY_DIR / f"{identity}.hcl").read_text(), identity)
    assert rules
    for rule in rules:
        assert not rule.path.startswith(("sys/", "auth/")), rule
        assert rule.capabilities == {"read"}, rule
        assert rule.path in (f"secret/data/{identity}", f"secret/data/{identity}/*"), rule


# --- the plan at phase 1 ----------------------------------------------------------------------


def test_access_matrix_is_exactly_the_intended_one(shared_plan: PlanFactory) -> None:
    # Every catalog service runs (the Redis replicas and database exporters behind their switches).
    matrix = access_matrix(
        shared_plan("phase=1", "profiles=full,reference", "redisReplicas=true", "databaseExporters=true")
    )
    assert set(matrix) == IDENTITIES
    for identity, access in matrix.items():
        expected = [f"secret/data/{identity}"]  # management's: its backup and restore passwords
        assert access.reads == expected, identity
        assert access.policies == [identity]
        assert access.flags == [], (identity, access.flags)
        assert set(access.escalations) == set(ESCALATIONS)
        assert not any(access.escalations.values()), identity


def test_an_identity_exists_only_for_a_container_that_runs(shared_plan: PlanFactory) -> None:
    run = shared_plan("phase=1")  # standard: no Grafana, Vector, APIs or exporters
    running = {r.inputs["name"].removeprefix("dev-") for r in run.by_type(CONTAINER)}
    roles = {r.name for r in run.by_type(ROLE)}
    assert roles == (IDENTITIES & running) | {"management"}
    assert {r.name for r in run.by_type(POLICY)} == roles
    assert {r.name for r in run.by_type(SECRET_ID)} == roles
    assert not {"grafana", "vector", "api-first"} & roles
    assert {"postgres", "forgejo"} <= roles


def test_access_matrix_flags_a_broad_policy() -> None:
    run = own_plan("phase=1")
    policy = run.one(POLICY, "forgejo")
    policy.inputs = {**policy.inputs, "policy": 'path "secret/data/*" { capabilities = ["read"] }\n'}
    role = run.one(ROLE, "mongodb")
    role.inputs = {**role.inputs, "tokenNoDefaultPolicy": False}
    matrix = access_matrix(run)
    assert "secret/data/postgres" in matrix["forgejo"].reads
    assert any("outside its own path" in f for f in matrix["forgejo"].flags)
    assert "reads secret/data/postgres" in matrix["forgejo"].flags
    assert "Vault's default policy is attached" in matrix["mongodb"].flags
    assert matrix["postgres"].flags == []


def test_every_credentialed_container_has_its_own_role(shared_plan: PlanFactory) -> None:
    run = shared_plan("phase=1", "profiles=full,reference", "redisReplicas=true", "databaseExporters=true")
    roles = {r.inputs["roleName"]: r.inputs for r in run.by_type(ROLE)}
    assert set(roles) == IDENTITIES
    for name, role in roles.items():
        assert role["tokenPolicies"] == [name]
        assert role["tokenNoDefaultPolicy"] is True
        assert role["tokenTtl"] <= 3600
        assert role["tokenMaxTtl"] <= 86400
        assert 0 < role["secretIdTtl"] <= 30 * 86400
        bound = [f"{plan_address(run, name)}/32"] if name != "management" else _gateways_of_vault(run)
        assert role["secretIdBoundCidrs"] == bound, name
        assert role["tokenBoundCidrs"] == bound
    (management,) = [r for r in run.by_type(SECRET_ID) if r.inputs["roleName"] == "management"]
    assert management.inputs["cidrLists"] == _gateways_of_vault(run)
    # Each secret_id reaches its own container only, as the 0400 file (the management one,
    # which has no container, is a stack output): observed in the program's uploads.
    uploads = {
        record.name: {u["file"]: u for u in unwrap(record.inputs).get("uploads", [])}
        for record in run.by_type(CONTAINER)
    }
    for secret_id in run.by_type(SECRET_ID):
        value = unwrap(secret_id.outputs["secretId"])
        holders = [name for name, files in uploads.items() if any(value in u["content"] for u in files.values())]
        role = secret_id.inputs["roleName"]
        if role == "management" or role not in uploads or _uploaded(role):
            # no container: management's, or a service behind a switch (redisReplicas); or one
            # whose secret is uploaded (Credentials.uploaded_because): it never logs in
            assert holders == []
            continue
        assert holders == [secret_id.inputs["roleName"]]
        upload = uploads[holders[0]][SECRET_ID_PATH]
        assert upload["content"] == value
        assert upload["permissions"] == "0400"


def _gateways_of_vault(run) -> list[str]:
    """The gateway of each network the plan attaches dev-vault to, as /32s: where this machine's
    connections to a published port come from (tests/test_host_address_docker.py shows it)."""
    vault = unwrap(run.one(CONTAINER, "vault").inputs)
    names = {a["name"] for a in vault["networksAdvanced"]}
    gateways = [
        config["gateway"]
        for network in run.by_type("docker:index/network:Network")
        if network.inputs["name"] in names
        for config in network.inputs["ipamConfigs"]
    ]
    assert len(gateways) == len(names) >= 1
    return sorted(f"{g}/32" for g in gateways)


def plan_address(run, name: str) -> str:
    from devstack.settings import load_settings

    return load_settings(run.config, stack=run.stack).static_ip(SERVICES_BY_NAME[name])


def _uploaded(name: str) -> bool:
    credentials = SERVICES_BY_NAME[name].credentials
    return credentials is not None and credentials.uploaded_because is not None


def test_no_root_token_in_any_container_at_phase1(shared_plan: PlanFactory) -> None:
    run = shared_plan("phase=1", "profiles=full,reference")
    token = json.loads(run.one("command:local:Command", "vault-init").outputs["stdout"].value)["root_token"]
    for record in run.by_type(CONTAINER):
        inputs = record.inputs
        text = json.dumps(unwrap(inputs))
        assert token not in text, record.name
        env = inputs.get("envs", [])
        assert not [e for e in env if e.startswith(("VAULT_TOKEN=", "DEVSTACK_TOKEN_FILE="))], record.name
        uploads = {u["file"]: u for u in inputs.get("uploads", [])}
        assert TOKEN_PATH not in uploads
        if _uploaded(record.name):  # no Vault login: its values as 0400 secret files
            secrets = [u for path, u in uploads.items() if path.startswith(SECRETS_DIR)]
            assert secrets
            assert all(isinstance(u["content"], Secret) and u["permissions"] == "0400" for u in secrets)
            assert ROLE_ID_PATH not in uploads
            assert not any(e.startswith("DEVSTACK_") for e in env)
        elif needs_secret(SERVICES_BY_NAME[record.name], client_accounts(SERVICES)):
            for path in (ROLE_ID_PATH, SECRET_ID_PATH):
                assert isinstance(uploads[path]["content"], Secret)
                assert uploads[path]["permissions"] == "0400"
            assert "DEVSTACK_AUTH=approle" in inputs["envs"]


def test_phase0_keeps_root_token_mode(shared_plan: PlanFactory) -> None:
    run = shared_plan("phase=0", "profiles=full,reference")
    assert run.by_type(ROLE) == []
    assert run.by_type(POLICY) == []
    postgres = containers(run)["dev-postgres"]
    assert f"DEVSTACK_TOKEN_FILE={TOKEN_PATH}" in postgres["envs"]
    assert TOKEN_PATH in {u["file"] for u in postgres["uploads"]}


def test_sub_step_1a_is_a_feature_override(shared_plan: PlanFactory) -> None:
    run = shared_plan(
        "phase=0", "features=approle=true", "profiles=full,reference", "redisReplicas=true", "databaseExporters=true"
    )
    assert {r.inputs["roleName"] for r in run.by_type(ROLE)} == IDENTITIES


def test_phase0_to_1_replaces_containers_but_no_volume_and_no_secret(
    shared_plan: PlanFactory, cached_commands: None
) -> None:
    from tools.plan import plan_for

    before = own_plan("profiles=full,reference", "phase=0")
    after = plan_for("dev", ["profiles=full,reference", "phase=1"], state=before.state)
    diff = diff_plans(before, after)
    touched = {(c.type, c.name) for c in diff.changes if c.action in ("replace", "delete", "update")}
    assert not [t for t in touched if t[0] in ("docker:index/volume:Volume", "vault:kv/secretV2:SecretV2")]
    assert not [t for t in touched if t[0].startswith("random:")]
    assert ("vault:index/mount:Mount", "vault-kv") not in touched
    replaced = {c.name for c in diff.of("replace") if c.type == CONTAINER}
    assert "postgres" in replaced
    created = {c.type for c in diff.of("create")}
    assert {ROLE, SECRET_ID, POLICY, "vault:index/authBackend:AuthBackend"} <= created


def test_a_new_rotation_period_mints_new_secret_ids(shared_plan: PlanFactory, cached_commands: None) -> None:
    from tools.plan import plan_for

    before = plan_for("dev", ["phase=1", "secretIdRotationDays=7"])
    after = plan_for("dev", ["phase=1", "secretIdRotationDays=3"], state=before.state)
    changes = {(c.type, c.name): c for c in diff_plans(before, after).changes}
    assert changes[(SECRET_ID, "postgres")].action == "replace"
    assert changes[(SECRET_ID, "postgres")].properties == ("metadata",)
    assert changes[(CONTAINER, "postgres")].action == "replace"  # the new secret_id file
    assert (ROLE, "postgres") not in changes


def test_access_matrix_flags_writes_on_its_own_path_and_a_missing_policy() -> None:
    run = own_plan("phase=1")
    policy = run.one(POLICY, "forgejo")
    policy.inputs = {**policy.inputs, "policy": 'path "secret/data/forgejo" { capabilities = ["read", "update"] }\n'}
    role = run.one(ROLE, "mongodb")
    role.inputs = {**role.inputs, "tokenPolicies": ["mongodb", "no-such-policy"]}
    matrix = access_matrix(run)
    assert matrix["forgejo"].flags == ["grants ['update'] on its own path"]
    assert matrix["forgejo"].reads == ["secret/data/forgejo"]
    assert matrix["mongodb"].flags == ["policy 'no-such-policy' is not in the plan"]


def test_access_command_prints_the_matrix_and_its_json(
    capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    args = ["--set", "phase=1", "--set", "profiles=minimal"]
    assert plan_main(["access", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["identity", "reads"]
    rows = [line.split(maxsplit=1) for line in lines[2:-2]]
    assert ["postgres", "secret/data/postgres"] in rows
    assert lines[-1].endswith(" identities, 0 flagged")
    assert plan_main(["access", "--json", *args]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "devstack-access/1"
    postgres = document["identities"]["postgres"]
    assert postgres["reads"] == ["secret/data/postgres"]
    assert postgres["flags"] == []
    assert set(postgres["escalations"]) == set(ESCALATIONS)
    assert int(lines[-1].split()[0]) == len(document["identities"])


def test_render_marks_each_flag_under_its_identity() -> None:
    matrix = access_matrix(own_plan("phase=1", "profiles=minimal"))
    matrix["postgres"].flags.append("reads secret/data/mysql")
    lines = render_matrix(matrix).splitlines()
    width = max(len(name) for name in matrix) + 2
    at = lines.index(f"{'postgres':<{width}}secret/data/postgres")
    assert lines[at + 1] == f"{'':<{width}}! reads secret/data/mysql"
    assert lines[-1].endswith(" identities, 1 flagged")


def test_access_command_without_approle_says_so(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert plan_main(["access", "--set", "profiles=minimal"]) == 0
    assert capsys.readouterr().out.startswith("No AppRole identities in this plan")
