"""scripts/entrypoint.sh in AppRole mode (DEVSTACK_AUTH=approle), run for real against FakeVault.

The container logs in with its own role ID and secret ID (files), then reads its own secret
with the token it got, under a policy loaded from HCL text. The images are those of
test_entrypoint_sh: busybox sh with busybox nc, dash with perl, bash with curl, busybox sh with
curl, and dash with busybox wget (the last resort). The end of the file checks the fake's
AppRole and HCL policies themselves.
"""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakevault import FakeVault, RequestRecord, VaultError, parse_policy_hcl
from tests.realservers import free_port
from tests.test_entrypoint_sh import (
    BUSYBOX,
    DASH,
    JSON_PASSWORD_BYTES,
    PASSWORD_BYTES,
    SECRET,
    VARIANTS,
    Container,
    Run,
    Variant,
    make_spy_toolbox,
    make_toolbox,
)

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

POLICY = """
# what the postgres container may read
path "secret/data/postgres" { capabilities = ["read"] }
"""
UNBOUND = "10.9.9.9/32"  # an address the tests never come from (they connect from 127.0.0.1)
REFUSED = "AppRole login refused for secret/postgres: "

_BY_ID = {v.id: v for v in VARIANTS}
NC = _BY_ID["alpine-busybox-nc"]
DASH_WGET = _BY_ID["dash-busybox-wget"]
IMAGES = (NC, _BY_ID["debian-dash-mawk-perl"], _BY_ID["oracle-bash-gawk-curl"], _BY_ID["busybox-curl"], DASH_WGET)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        server.ready()
        server.put_secret("postgres", SECRET)
        server.put_secret("other", {"password": "not-for-postgres"})
        server.enable_approle()
        server.load_policy_hcl("postgres", POLICY)
        yield server


@dataclass
class AppRoleBox(Container):
    """A container that logs in with AppRole: no token file unless a test adds one."""

    @property
    def role_id_file(self) -> Path:
        return self.root / "devstack" / "approle" / "role-id"

    @property
    def secret_id_file(self) -> Path:
        return self.root / "devstack" / "approle" / "secret-id"

    def give_ids(self, role_id: str, secret_id: str) -> None:
        self.role_id_file.parent.mkdir(parents=True, exist_ok=True)
        for path, value in ((self.role_id_file, role_id), (self.secret_id_file, secret_id)):
            if path.exists():
                path.chmod(0o600)
            path.write_text(value + "\n")
            path.chmod(0o400)

    def login_run(self, address: str, *command: str, wait: int = 5, **extra: str) -> Run:
        env = {
            "PATH": str(self.path),
            "VAULT_ADDR": address,
            "DEVSTACK_AUTH": "approle",
            "DEVSTACK_ROLE_ID_FILE": str(self.role_id_file),
            "DEVSTACK_SECRET_ID_FILE": str(self.secret_id_file),
            "DEVSTACK_SECRET_PATH": "postgres",
            "DEVSTACK_SECRETS_DIR": str(self.secrets_dir),
            "DEVSTACK_TEMPLATE_DIR": str(self.templates),
            "DEVSTACK_WAIT_SECONDS": str(wait),
            **extra,
        }
        return self.execute({k: v for k, v in env.items() if v != ""}, *command)


def make_box(toolboxes: Path, tmp_path: Path, variant: Variant) -> AppRoleBox:
    root = tmp_path / "root"
    root.mkdir()
    return AppRoleBox(variant, make_toolbox(toolboxes, variant), root)


def postgres_role(vault: FakeVault, **options: Any) -> tuple[str, str]:
    """The postgres role (with these options) and one secret ID of it."""
    role_id = vault.create_role("postgres", ["postgres"], **options)
    return role_id, vault.create_secret_id("postgres")


@pytest.fixture(params=IMAGES, ids=[v.id for v in IMAGES])
def box(request: pytest.FixtureRequest, toolboxes: Path, tmp_path: Path) -> AppRoleBox:
    return make_box(toolboxes, tmp_path, request.param)


@pytest.fixture
def alpine(toolboxes: Path, tmp_path: Path) -> AppRoleBox:
    return make_box(toolboxes, tmp_path, NC)


def secrets_of(vault: FakeVault, box: AppRoleBox) -> list[str]:
    """Every token the fake issued (revoked ones too), and the role and secret IDs the box holds."""
    values = [*vault.tokens, *vault.revoked_tokens]
    for path in (box.role_id_file, box.secret_id_file):
        if path.exists():
            values.append(path.read_text().strip())
    return [v for v in values if v]


def assert_quiet(run: Run, vault: FakeVault, box: AppRoleBox) -> None:
    for value in secrets_of(vault, box):
        assert value not in run.stderr
        assert value.encode() not in run.stdout
    for value in SECRET.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in run.stderr


def assert_one_clear_failure(run: Run, vault: FakeVault, box: AppRoleBox, *fragments: str) -> str:
    assert run.returncode != 0
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("devstack-entrypoint: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert_quiet(run, vault, box)
    assert run.stdout == b""  # the command never ran
    assert not box.secrets_dir.exists() or not list(box.secrets_dir.iterdir())
    return lines[0]


def login_refused(run: Run, vault: FakeVault, box: AppRoleBox, reason: str) -> None:
    """The login's 400, with Vault's reason (busybox/GNU wget never shows an error's body)."""
    if box.variant is DASH_WGET:
        assert_one_clear_failure(run, vault, box, REFUSED + "HTTP 400: an invalid role or secret ID", "(wget keeps")
    else:
        line = assert_one_clear_failure(run, vault, box, REFUSED + reason)
        assert "%!w" not in line
    assert vault.count("auth/approle/login", "POST") == 1
    assert vault.count("secret/data/postgres") == 0


# -- the contract, in every kind of image -----------------------------------------------------------


def test_logs_in_reads_its_own_secret_and_execs(box: AppRoleBox, vault: FakeVault) -> None:
    role_id, secret_id = postgres_role(vault)
    box.give_ids(role_id, secret_id)
    box.templates.mkdir(parents=True)
    (box.templates / "pgpass").write_text("*:*:*:{{username}}:{{password}}\n")
    dest = box.root / "etc" / "pgpass"
    show = 'env; echo "--file"; cat "$DEVSTACK_SECRETS_DIR/password"'
    run = box.login_run(vault.address, "sh", "-c", show, DEVSTACK_TEMPLATES=f"pgpass:{dest}:0400:json")
    assert run.returncode == 0, run.stderr
    environment, password = run.stdout.split(b"--file\n", 1)
    assert password == PASSWORD_BYTES
    # one login, then the read with the token it gave, by the image's transport
    assert [(r.method, r.path, r.status) for r in vault.log][-2:] == [
        ("POST", "auth/approle/login", 200),
        ("GET", "secret/data/postgres", 200),
    ]
    assert {r.user_agent for r in vault.log} == {box.variant.agent}
    (issued,) = [e for e in vault.tokens.values() if e.meta.get("role_name") == "postgres"]
    assert issued.policies == ("default", "postgres")
    # nothing of the login in the command's environment, the files, the output
    for value in (issued.token, role_id, secret_id):
        assert value.encode() not in environment
        for path in (*box.secrets_dir.iterdir(), dest):
            assert value.encode() not in path.read_bytes()
    assert b"DEVSTACK_TOKEN_FILE" not in environment
    assert sorted(p.name for p in box.secrets_dir.iterdir()) == sorted(SECRET)
    for key, value in SECRET.items():
        assert (box.secrets_dir / key).read_bytes() == str(value).encode(), key
        assert stat.S_IMODE((box.secrets_dir / key).stat().st_mode) == 0o400
    assert dest.read_bytes() == b"*:*:*:app:" + JSON_PASSWORD_BYTES + b"\n"
    assert_quiet(run, vault, box)
    assert run.stderr.startswith("devstack-entrypoint: secret/postgres -> ")


def test_the_role_cannot_read_another_path(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault))
    run = box.login_run(vault.address, "echo", "ran", DEVSTACK_SECRET_PATH="other")
    assert_one_clear_failure(
        run, vault, box, "permission denied for secret/other: the AppRole login's token may not read secret/data/other"
    )
    assert vault.count("auth/approle/login") == 1
    assert [r.status for r in vault.log if r.path == "secret/data/other"] == [403]


def test_a_wrong_role_id(box: AppRoleBox, vault: FakeVault) -> None:
    _, secret_id = postgres_role(vault)
    box.give_ids("6f1c1b2a-0d4e-4f4a-9a51-1d5b0c7e9e11", secret_id)
    login_refused(box.login_run(vault.address, "echo", "ran"), vault, box, "invalid role or secret ID")


def test_a_wrong_secret_id(box: AppRoleBox, vault: FakeVault) -> None:
    role_id, _ = postgres_role(vault)
    box.give_ids(role_id, "0b6a3c0e-7d1f-4a8e-b2c4-5e6f7a8b9c0d")
    login_refused(box.login_run(vault.address, "echo", "ran"), vault, box, "invalid role or secret ID")


def test_an_expired_secret_id(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault, secret_id_ttl=600))
    vault.clock.advance(601)
    login_refused(box.login_run(vault.address, "echo", "ran"), vault, box, "invalid role or secret ID")


def test_a_used_up_secret_id(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault, secret_id_num_uses=1))
    first = box.login_run(vault.address, "true")
    assert first.returncode == 0, first.stderr
    vault.log.clear()
    vault.counts.clear()
    for path in box.secrets_dir.iterdir():
        path.chmod(0o600)
        path.unlink()
    login_refused(box.login_run(vault.address, "echo", "ran"), vault, box, "invalid role or secret ID")


def test_a_login_from_an_unbound_address(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault, secret_id_bound_cidrs=[UNBOUND]))
    run = box.login_run(vault.address, "echo", "ran")
    login_refused(run, vault, box, 'source address "127.0.0.1" unauthorized by CIDR restrictions on the role')


def test_a_secret_id_bound_elsewhere(box: AppRoleBox, vault: FakeVault) -> None:
    role_id = vault.create_role("postgres", ["postgres"])
    box.give_ids(role_id, vault.create_secret_id("postgres", cidr_list=[UNBOUND]))
    run = box.login_run(vault.address, "echo", "ran")
    login_refused(run, vault, box, 'source address "127.0.0.1" unauthorized through CIDR restrictions on the secret ID')


def test_a_token_bound_to_other_addresses(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault, token_bound_cidrs=[UNBOUND]))
    run = box.login_run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, box, "permission denied for secret/postgres", "token_bound_cidrs")
    assert [r.status for r in vault.log if r.path != "sys/health"] == [200, 403]


def test_a_token_used_past_its_ttl(box: AppRoleBox, vault: FakeVault) -> None:
    box.give_ids(*postgres_role(vault, token_ttl=60))

    def later(record: RequestRecord) -> None:
        if record.path == "auth/approle/login" and record.status == 200:
            vault.clock.advance(61)  # the token's minute is up before the read

    vault.after_request = later
    run = box.login_run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, box, "permission denied for secret/postgres", "token_ttl")
    assert [r.status for r in vault.log if r.path != "sys/health"] == [200, 403]
    assert [e.meta for e in vault.revoked_tokens.values()] == [{"role_name": "postgres"}]


# -- the rest, in the busybox (nc) image -------------------------------------------------------------


def test_approle_wins_over_a_token_file(alpine: AppRoleBox, vault: FakeVault) -> None:
    alpine.give_ids(*postgres_role(vault))
    alpine.give_token("hvs.not-a-real-token")
    run = alpine.login_run(
        vault.address, "cat", str(alpine.secrets_dir / "username"), DEVSTACK_TOKEN_FILE=str(alpine.token_file)
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"app"
    assert vault.count("auth/approle/login") == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-role-id-variable", "DEVSTACK_AUTH=approle needs DEVSTACK_ROLE_ID_FILE"),
        ("no-secret-id-variable", "DEVSTACK_AUTH=approle needs DEVSTACK_SECRET_ID_FILE"),
        ("role-id-missing", "role ID file {role} is missing"),
        ("secret-id-missing", "secret ID file {secret} is missing"),
        ("role-id-empty", "role ID file {role} is empty"),
        ("secret-id-blank", "secret ID file {secret} is empty"),
        ("secret-id-garbage", "secret ID file {secret} does not hold a Vault secret ID on its first line"),
    ],
)
def test_without_usable_id_files(alpine: AppRoleBox, vault: FakeVault, case: str, message: str) -> None:
    alpine.give_ids(*postgres_role(vault))
    extra: dict[str, Any] = {}
    if case == "no-role-id-variable":
        extra["DEVSTACK_ROLE_ID_FILE"] = ""
    elif case == "no-secret-id-variable":
        extra["DEVSTACK_SECRET_ID_FILE"] = ""
    elif case.endswith("-missing"):
        (alpine.role_id_file if case.startswith("role") else alpine.secret_id_file).unlink()
    else:
        target = alpine.role_id_file if case.startswith("role") else alpine.secret_id_file
        target.chmod(0o600)
        target.write_text({"role-id-empty": "", "secret-id-blank": "\n\n", "secret-id-garbage": 'a"b\n'}[case])
    run = alpine.login_run(vault.address, "echo", "ran", **extra)
    assert_one_clear_failure(run, vault, alpine, message.format(role=alpine.role_id_file, secret=alpine.secret_id_file))
    assert vault.log == []  # it fails before waiting for Vault


def test_an_unknown_auth_mode(alpine: AppRoleBox, vault: FakeVault) -> None:
    run = alpine.login_run(vault.address, "echo", "ran", DEVSTACK_AUTH="kubernetes")
    assert_one_clear_failure(run, vault, alpine, "DEVSTACK_AUTH must be token or approle, got 'kubernetes'")
    assert vault.log == []


def test_vaults_reason_never_shows_the_ids(alpine: AppRoleBox, vault: FakeVault) -> None:
    """Vault's answer for a secret ID lost in a race quotes it; the message leaves it out."""
    role_id, secret_id = postgres_role(vault)
    alpine.give_ids(role_id, secret_id)
    body = {"errors": [f"invalid secret_id {json.dumps(secret_id)} for role_id {role_id}"]}
    vault.override("auth/approle/login", 400, json.dumps(body).encode())
    run = alpine.login_run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, alpine, REFUSED + 'invalid secret_id "[redacted]" for role_id [redacted]')


def test_approle_not_enabled(alpine: AppRoleBox) -> None:
    with FakeVault() as bare:
        bare.ready()
        alpine.give_ids("6f1c1b2a-0d4e-4f4a-9a51-1d5b0c7e9e11", "0b6a3c0e-7d1f-4a8e-b2c4-5e6f7a8b9c0d")
        run = alpine.login_run(bare.address, "echo", "ran")
        assert_one_clear_failure(
            run, bare, alpine, "AppRole login for secret/postgres failed: HTTP 403 (permission denied)", "auth/approle?"
        )


def test_no_secret_at_the_path(alpine: AppRoleBox, vault: FakeVault) -> None:
    vault.load_policy_hcl("postgres", POLICY + 'path "secret/data/missing" { capabilities = ["read"] }\n')
    alpine.give_ids(*postgres_role(vault))
    run = alpine.login_run(vault.address, "echo", "ran", DEVSTACK_SECRET_PATH="missing")
    assert_one_clear_failure(run, vault, alpine, "no secret at secret/missing")


def test_an_unreachable_vault(alpine: AppRoleBox, vault: FakeVault) -> None:
    alpine.give_ids(*postgres_role(vault))
    port = free_port()
    run = alpine.login_run(f"http://127.0.0.1:{port}", "echo", "ran", wait=0)
    assert_one_clear_failure(run, vault, alpine, f"Vault at http://127.0.0.1:{port} is not ready after 0s", "refused")


def test_a_login_answer_without_a_token(alpine: AppRoleBox, vault: FakeVault) -> None:
    alpine.give_ids(*postgres_role(vault))
    vault.override("auth/approle/login", 200, b'{"auth":null,"data":{"client_token":"x"}}')
    run = alpine.login_run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, alpine, "Vault's answer has no usable auth.client_token")


# -- nothing secret on a command line ----------------------------------------------------------------


@pytest.mark.parametrize("client", ["curl", "perl", "nc", "wget"])
def test_what_reaches_a_command_line(client: str, tmp_path: Path, vault: FakeVault) -> None:
    """Neither the role ID, the secret ID nor the token, except the token for wget."""
    if DASH is None:
        pytest.skip("dash is not installed")
    log = tmp_path / "argv.log"
    root = tmp_path / "root"
    root.mkdir()
    spy = AppRoleBox(Variant("spy", "dash", (), ""), make_spy_toolbox(tmp_path / "spy", log, client), root)
    role_id, secret_id = postgres_role(vault)
    spy.give_ids(role_id, secret_id)
    run = spy.login_run(vault.address, "true")
    assert run.returncode == 0, run.stderr
    assert all(r.user_agent == f"devstack-entrypoint-{client}" for r in vault.log), vault.log
    commands = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert any(line.startswith(f"{client} ") or f" {client} " in line for line in commands), commands
    (issued,) = [e.token for e in vault.tokens.values() if e.meta]
    for value in (role_id, secret_id):
        assert not [line for line in commands if value in line]
    with_token = [line for line in commands if issued in line]
    if client == "wget":
        assert with_token
        assert all(line.startswith(("wget ", "timeout 30 wget ")) for line in with_token), with_token
    else:
        assert with_token == []


# -- the fake's AppRole and policies ---------------------------------------------------------------


def call(
    vault: FakeVault, method: str, path: str, body: object = None, *, token: str | None = None, form: bool = False
) -> tuple[int, dict]:
    data = None
    if body is not None:
        data = (urllib.parse.urlencode(body) if form else json.dumps(body)).encode()  # type: ignore[arg-type]
    request = urllib.request.Request(
        f"{vault.address}/v1/{path}", data=data, method=method, headers={"X-Vault-Token": token} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def login(vault: FakeVault, role_id: str, secret_id: str) -> tuple[int, dict]:
    return call(vault, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id})


def test_fake_login_answers_like_vault(vault: FakeVault) -> None:
    vault.clock.freeze()
    role_id, secret_id = postgres_role(vault, token_ttl=1200, token_max_ttl=3600)
    status, answer = login(vault, role_id, secret_id)
    assert status == 200
    auth = answer["auth"]
    assert auth["client_token"].startswith("hvs.")
    assert len(auth["client_token"]) == 95
    assert (auth["policies"], auth["token_policies"]) == (["default", "postgres"], ["default", "postgres"])
    assert (auth["lease_duration"], auth["renewable"], auth["metadata"]) == (1200, True, {"role_name": "postgres"})
    assert (answer["data"], answer["lease_duration"]) == (None, 0)
    token = auth["client_token"]
    assert call(vault, "GET", "secret/data/postgres", token=token)[1]["data"]["data"]["username"] == "app"
    assert call(vault, "GET", "secret/data/other", token=token) == (
        403,
        {"errors": ["1 error occurred:\n\t* permission denied\n\n"]},
    )
    status, me = call(vault, "GET", "auth/token/lookup-self", token=token)
    assert (status, me["data"]["meta"], me["data"]["path"]) == (200, {"role_name": "postgres"}, "auth/approle/login")
    assert 1199 <= me["data"]["ttl"] <= 1200  # whole seconds left, as Vault counts them
    # a form body is read too, as Vault does for anything that is not a JSON object
    status, answer = call(vault, "PUT", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, form=True)
    assert status == 200
    assert answer["auth"]["client_token"] != token


def test_fake_login_refusals(vault: FakeVault) -> None:
    vault.clock.freeze()
    invalid = (400, {"errors": ["invalid role or secret ID"]})
    role_id, secret_id = postgres_role(vault, secret_id_ttl=300)
    assert call(vault, "POST", "auth/approle/login", {"secret_id": secret_id}) == (400, {"errors": ["missing role_id"]})
    assert call(vault, "POST", "auth/approle/login", {"role_id": role_id}) == (400, {"errors": ["missing secret_id"]})
    assert login(vault, "no-such-role", secret_id) == invalid
    assert login(vault, role_id, "no-such-secret") == invalid
    # a secret ID of another role is no secret ID of this one
    vault.create_role("mysql", ["mysql"])
    assert login(vault, role_id, vault.create_secret_id("mysql")) == invalid
    assert login(vault, role_id, secret_id)[0] == 200
    vault.clock.advance(300)
    assert login(vault, role_id, secret_id) == invalid
    # uses: a secret ID of two works twice
    fresh = vault.create_secret_id("postgres", num_uses=2)
    assert [login(vault, role_id, fresh)[0] for _ in range(3)] == [200, 200, 400]
    assert call(vault, "GET", "auth/approle/login") == (405, {"errors": ["unsupported operation"]})


def test_fake_cidr_bindings(vault: FakeVault) -> None:
    role_id = vault.create_role("bound", ["postgres"], secret_id_bound_cidrs=[UNBOUND], secret_id_num_uses=3)
    secret_id = vault.create_secret_id("bound")
    assert login(vault, role_id, secret_id) == (
        400,
        {"errors": ['source address "127.0.0.1" unauthorized by CIDR restrictions on the role: %!w(<nil>)']},
    )
    # Vault spends the use before it looks at the address
    (entry,) = [e for (role, _), e in vault.secret_ids.items() if role == "bound"]
    assert entry.num_uses == 2
    # a secret ID's own list must lie within the role's
    with pytest.raises(VaultError, match="failed to verify subset relationship"):
        vault.create_secret_id("bound", cidr_list=["10.0.0.0/8"])
    assert vault.create_secret_id("bound", cidr_list=["10.9.9.9"])
    # a secret ID bound elsewhere: without uses, then with
    open_id = vault.create_role("open", ["postgres"])
    assert login(vault, open_id, vault.create_secret_id("open", cidr_list=["127.0.0.0/8"]))[0] == 200
    assert login(vault, open_id, vault.create_secret_id("open", cidr_list=[UNBOUND])) == (
        400,
        {"errors": ['source address "127.0.0.1" unauthorized through CIDR restrictions on the secret ID']},
    )
    assert login(vault, open_id, vault.create_secret_id("open", cidr_list=[UNBOUND], num_uses=1)) == (
        400,
        {"errors": ['source address "127.0.0.1" unauthorized by CIDR restrictions on the secret ID: %!w(<nil>)']},
    )
    # the token's own binding: the login works, the token does not, from here
    tied = vault.create_role("tied", ["postgres"], token_bound_cidrs=[UNBOUND])
    status, answer = login(vault, tied, vault.create_secret_id("tied"))
    assert status == 200
    token = answer["auth"]["client_token"]
    assert call(vault, "GET", "secret/data/postgres", token=token) == (403, {"errors": ["permission denied"]})
    here = vault.create_role("here", ["postgres"], token_bound_cidrs=["127.0.0.1/32"])
    token = login(vault, here, vault.create_secret_id("here"))[1]["auth"]["client_token"]
    assert call(vault, "GET", "secret/data/postgres", token=token)[0] == 200


def test_fake_tokens_expire(vault: FakeVault) -> None:
    role_id, secret_id = postgres_role(vault, token_ttl=600)
    with pytest.raises(VaultError, match="token_ttl should not be greater than token_max_ttl"):
        vault.create_role("bad", token_ttl=10, token_max_ttl=5)
    vault.create_role("postgres", ["postgres"], token_ttl=60)  # the same role again keeps its role_id
    assert vault.role_id("postgres") == role_id
    answer = login(vault, role_id, secret_id)[1]
    token = answer["auth"]["client_token"]
    assert answer["auth"]["lease_duration"] == 60
    vault.clock.advance(59)
    assert call(vault, "GET", "secret/data/postgres", token=token)[0] == 200
    vault.clock.advance(1)
    assert call(vault, "GET", "secret/data/postgres", token=token) == (403, {"errors": ["permission denied"]})
    assert token not in vault.tokens  # revoked
    assert vault.root_token is not None
    assert call(vault, "GET", "secret/data/postgres", token=vault.root_token)[0] == 200  # no TTL
    short = vault.create_token(["postgres"], ttl=5)
    vault.clock.advance(5)
    assert call(vault, "GET", "secret/data/postgres", token=short)[0] == 403


def test_fake_role_endpoints(vault: FakeVault) -> None:
    role_id = vault.create_role("postgres", ["postgres"], secret_id_ttl=600, secret_id_num_uses=5)
    root = vault.root_token
    assert call(vault, "GET", "auth/approle/role/postgres/role-id", token=root)[1]["data"] == {"role_id": role_id}
    assert call(vault, "GET", "auth/approle/role/nope/role-id", token=root) == (404, {"errors": []})
    status, answer = call(vault, "POST", "auth/approle/role/postgres/secret-id", {}, token=root)
    assert status == 200
    assert (answer["data"]["secret_id_ttl"], answer["data"]["secret_id_num_uses"]) == (600, 5)
    assert login(vault, role_id, answer["data"]["secret_id"])[0] == 200
    assert call(vault, "POST", "auth/approle/role/nope/secret-id", {}, token=root) == (
        400,
        {"errors": ['role "nope" does not exist']},
    )
    # the role's own token may not make secret IDs
    token = login(vault, role_id, vault.create_secret_id("postgres"))[1]["auth"]["client_token"]
    assert call(vault, "POST", "auth/approle/role/postgres/secret-id", {}, token=token)[0] == 403
    with FakeVault() as bare:
        bare.ready()
        assert login(bare, role_id, "x") == (403, {"errors": ["permission denied"]})
        with pytest.raises(RuntimeError):
            bare.create_role("postgres")


def test_fake_reads_policies_as_vault_does(vault: FakeVault) -> None:
    rules = vault.load_policy_hcl(
        "apps",
        """
        name = "apps"
        path "secret/data/app/*" { capabilities = ["read", "list"] }
        path "secret/data/app/two/*" {
          capabilities = ["deny"]   # the more specific glob wins
        }
        path "/secret/data/+/db" { capabilities = ["read"] }
        path "secret/data/other" { capabilities = ["create"] }   # exact beats every glob
        path "secret/data/old" { policy = "write" }
        path "secret/data/both" { capabilities = ["read"] }
        path "secret/data/both" { capabilities = ["update", "deny"] }
        path "secret/data/a*b" { capabilities = ["read"] }  # a * inside is a plain character
        """,
    )
    assert rules == {
        "secret/data/app/*": ["list", "read"],
        "secret/data/app/two/*": ["deny"],
        "secret/data/+/db": ["read"],
        "secret/data/other": ["create"],
        "secret/data/old": ["create", "delete", "list", "read", "update"],
        "secret/data/both": ["deny"],
        "secret/data/a*b": ["read"],
    }
    for path in ("app/one", "app/two/deep", "team/db", "other", "old", "both", "a*b", "aXb"):
        vault.put_secret(path, {"k": "v"})
    token = vault.create_token(["apps"])
    wanted = {"app/one": 200, "app/two/deep": 403, "team/db": 200, "other": 403, "old": 200, "both": 403}
    wanted |= {"a*b": 200, "aXb": 403}
    got = {path: call(vault, "GET", f"secret/data/{path}", token=token)[0] for path in wanted}
    assert got == wanted
    # the JSON form of a policy, as Vault also takes it
    assert parse_policy_hcl('{"path": {"secret/data/j": {"capabilities": ["read"]}}}') == {"secret/data/j": ["read"]}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('path "a" { capabilities = ["reed"] }', 'path "a": invalid capability "reed"'),
        ('path "a/+*" { capabilities = ["read"] }', "invalid use of wildcards ('+*' is forbidden)"),
        ('path "a" { capability = ["read"] }', 'path "a": invalid key "capability"'),
        ('paths "a" { capabilities = ["read"] }', 'invalid key "paths"'),
        ('path "a" { policy = "all" }', 'path "a": invalid policy "all"'),
        ('path "a" { capabilities = ["read" }', "failed to parse policy: "),
    ],
)
def test_fake_refuses_bad_policies(text: str, error: str) -> None:
    with pytest.raises(VaultError) as raised:
        parse_policy_hcl(text)
    assert raised.value.status == 400
    assert raised.value.errors[0].startswith("failed to parse policy: ")
    assert error in raised.value.errors[0]
