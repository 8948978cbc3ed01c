"""scripts/vault-bootstrap.sh retiring the root token (strict) and getting one back (below it).

Why a fake Vault (tests/fakevault.py): no Vault binary exists on this machine (the module proxy
refused it, final), and a real server could not be made to fail or be interrupted at one chosen
request on demand. The fake serves the AppRole mount, role, role-id, secret-id (mint, list,
lookup, destroy by accessor) and login, sys/policies/acl, auth/token/revoke-self and
sys/generate-root as Vault's HTTP API documents them (and decodes a generated root token the way
Vault's own test vector says). Run under busybox sh with curl (the client the token-carrying
requests need), and under bash with the system's curl.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.fakevault import FakeVault, Fault, decode_root_token, encode_root_token
from tests.test_vault_bootstrap_sh import (
    BUSYBOX,
    VARIANTS,
    Bootstrap,
    Run,
    make_bootstrap,
    make_toolbox,
)

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "vault" / "provisioner.hcl"
CURL_VARIANTS = [v for v in VARIANTS if v.agent == "curl/"]


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        yield server


@pytest.fixture(params=CURL_VARIANTS, ids=[v.id for v in CURL_VARIANTS])
def bootstrap(request: pytest.FixtureRequest, toolboxes: Path, tmp_path: Path) -> Bootstrap:
    return make_bootstrap(tmp_path, request.param, make_toolbox(toolboxes, request.param.toolbox))


@pytest.fixture
def busybox_curl(toolboxes: Path, tmp_path: Path) -> Bootstrap:
    return make_bootstrap(tmp_path, CURL_VARIANTS[0], make_toolbox(toolboxes, CURL_VARIANTS[0].toolbox))


def creds_file(bootstrap: Bootstrap) -> Path:
    return bootstrap.init_file.parent / "vault-provisioner.json"


def keep(bootstrap: Bootstrap, vault: FakeVault) -> Run:
    return bootstrap.run(vault.address, DEVSTACK_ROOT_TOKEN="keep")


def retire(bootstrap: Bootstrap, vault: FakeVault, policy: Path = POLICY, cidrs: str = "127.0.0.1/32") -> Run:
    """The strict step; the fake sees the script's connections come from 127.0.0.1."""
    return bootstrap.run(
        vault.address,
        DEVSTACK_ROOT_TOKEN="retire",
        DEVSTACK_PROVISIONER_POLICY=str(policy),
        DEVSTACK_PROVISIONER_CIDRS=cidrs,
    )


def recovery(bootstrap: Bootstrap) -> dict[str, object]:
    return json.loads(bootstrap.init_file.read_text())


def login_answer(vault: FakeVault, ids: dict[str, str], address: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    return vault.handle(
        "PUT", "/v1/auth/approle-provisioner/login", _headers(), json.dumps(ids).encode(), remote_addr=address
    )


def login(vault: FakeVault, ids: dict[str, str]) -> str:
    status, answer = login_answer(vault, ids)
    assert status == 200, answer
    return answer["auth"]["client_token"]


def _headers(token: str = "") -> Message:
    message = Message()
    if token:
        message["X-Vault-Token"] = token
    return message


def lookup(vault: FakeVault, token: str, address: str = "127.0.0.1") -> int:
    status, _ = vault.handle("GET", "/v1/auth/token/lookup-self", _headers(token), b"", remote_addr=address)
    return status


def assert_no_secret_on_stderr(run: Run, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.stderr


def test_the_decoder_agrees_with_vaults_test_vector() -> None:
    # vault/logical_system_test.go, TestSystemBackend_decodeToken: these three values
    assert (
        decode_root_token("Bxg9JQQqOCNKBRICNwMIRzo2J3cWCBRi", "3JhHkONiyiaNYj14nnD9xZQS") == "4RUmoevJ3lsLni9sTXcNnRE1"
    )
    assert (
        encode_root_token("4RUmoevJ3lsLni9sTXcNnRE1", "3JhHkONiyiaNYj14nnD9xZQS") == "Bxg9JQQqOCNKBRICNwMIRzo2J3cWCBRi"
    )


def test_retire_sets_up_the_provisioner_and_revokes_the_root_token(bootstrap: Bootstrap, vault: FakeVault) -> None:
    assert keep(bootstrap, vault).returncode == 0
    root = vault.root_token
    assert root is not None
    run = retire(bootstrap, vault)
    assert run.returncode == 0, run.stderr
    ids = json.loads(run.stdout)
    assert set(ids) == {"role_id", "secret_id"}
    # the ids are kept 0600 beside the recovery file, in the same private folder
    kept = creds_file(bootstrap)
    assert json.loads(kept.read_text()) == ids
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    # the policy is the reviewed document, on the provisioner's own mount and role
    assert vault.policy_texts["provisioner"] == POLICY.read_text()
    assert vault.auth_mounts["approle-provisioner"] == "approle"
    role = vault.approles["approle-provisioner/provisioner"]
    assert role.policies == ("provisioner",)
    assert role.no_default_policy
    assert role.role_id == ids["role_id"]
    # the provider's login works, and what it gets is the provisioner's policy only
    token = login(vault, ids)
    assert vault.tokens[token].policies == ("provisioner",)
    # the root token is revoked: Vault refuses it; and it is gone from the recovery file
    assert root in vault.revoked_by_request
    assert lookup(vault, root) == 403
    assert "root_token" not in recovery(bootstrap)
    assert recovery(bootstrap)["keys_base64"] == vault.init_result().keys_base64
    assert root not in bootstrap.init_file.read_text()
    assert_no_secret_on_stderr(run, root, ids["secret_id"])


def test_retire_again_is_idempotent(bootstrap: Bootstrap, vault: FakeVault) -> None:
    assert keep(bootstrap, vault).returncode == 0
    first = retire(bootstrap, vault)
    assert first.returncode == 0, first.stderr
    requests = len(vault.log)
    second = retire(bootstrap, vault)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # the same ids: nothing made anew
    new = [(r.method, r.path) for r in vault.log[requests:]]
    assert not [p for _, p in new if p.startswith(("sys/generate-root", "sys/policies", "sys/auth/"))], new
    assert len(vault.approles) == 1
    assert sum(1 for role, _ in vault.secret_ids if role == "approle-provisioner/provisioner") == 1


def test_a_changed_policy_is_applied_again_with_a_new_root_token(
    busybox_curl: Bootstrap, vault: FakeVault, tmp_path: Path
) -> None:
    assert keep(busybox_curl, vault).returncode == 0
    ids = json.loads(retire(busybox_curl, vault).stdout)
    changed = tmp_path / "provisioner.hcl"
    changed.write_text(POLICY.read_text() + 'path "sys/mounts/extra" {\n  capabilities = ["read"]\n}\n')
    run = retire(busybox_curl, vault, changed)
    assert run.returncode == 0, run.stderr
    assert vault.policies["provisioner"]["sys/mounts/extra"] == ["read"]
    assert json.loads(run.stdout) == ids  # the ids still log in: kept, no new secret_id
    assert vault.count("sys/generate-root/update", "PUT") == 3
    assert "root_token" not in recovery(busybox_curl)
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies]  # the new one is revoked too


def test_the_provisioner_is_bound_to_the_given_addresses(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    """Bound to 127.0.0.1/32 (where the fake sees this machine) its login and token work from
    there; from any other address Vault refuses both, as it does management's."""
    assert keep(busybox_curl, vault).returncode == 0
    run = retire(busybox_curl, vault)
    assert run.returncode == 0, run.stderr
    role = vault.approles["approle-provisioner/provisioner"]
    assert role.secret_id_bound_cidrs == role.token_bound_cidrs == ("127.0.0.1/32",)
    ids = json.loads(run.stdout)
    token = login(vault, ids)
    assert lookup(vault, token) == 200
    assert lookup(vault, token, "10.9.9.9") == 403
    status, answer = login_answer(vault, ids, "10.9.9.9")
    assert status == 400
    assert "CIDR restrictions on the role" in answer["errors"][0]


def test_bound_elsewhere_the_provisioner_cannot_log_in(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    assert keep(busybox_curl, vault).returncode == 0
    run = retire(busybox_curl, vault, cidrs="10.9.9.9/32")
    assert run.returncode == 0, run.stderr
    status, answer = login_answer(vault, json.loads(run.stdout))
    assert status == 400
    assert 'source address "127.0.0.1" unauthorized' in answer["errors"][0]


def test_changed_cidrs_rewrite_the_role_with_a_new_root_token(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    """Segmentation changes the gateway Vault sees: the same path as a changed policy (a root
    token from the unseal keys, the role rewritten, the root token revoked again)."""
    assert keep(busybox_curl, vault).returncode == 0
    ids = json.loads(retire(busybox_curl, vault).stdout)
    generated = vault.count("sys/generate-root/update", "PUT")
    wider = retire(busybox_curl, vault, cidrs="127.0.0.1/32,10.9.9.9/32")
    assert wider.returncode == 0, wider.stderr
    role = vault.approles["approle-provisioner/provisioner"]
    assert role.secret_id_bound_cidrs == role.token_bound_cidrs == ("127.0.0.1/32", "10.9.9.9/32")
    assert json.loads(wider.stdout) == ids  # they still log in: kept
    assert vault.count("sys/generate-root/update", "PUT") == generated + 3
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies]
    assert "root_token" not in recovery(busybox_curl)
    # the same CIDRs again: nothing is redone
    assert retire(busybox_curl, vault, cidrs="127.0.0.1/32,10.9.9.9/32").stdout == wider.stdout
    assert vault.count("sys/generate-root/update", "PUT") == generated + 3
    # bound elsewhere now: the kept ids no longer log in, so the role is rewritten and a new
    # secret_id minted (bound likewise)
    moved = retire(busybox_curl, vault, cidrs="10.9.9.9/32")
    assert moved.returncode == 0, moved.stderr
    assert vault.approles["approle-provisioner/provisioner"].token_bound_cidrs == ("10.9.9.9/32",)
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies]
    back = retire(busybox_curl, vault)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["secret_id"] != ids["secret_id"]
    login(vault, json.loads(back.stdout))
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies]
    assert provisioner_secret_ids(vault) == [json.loads(back.stdout)["secret_id"]]


def provisioner_secret_ids(vault: FakeVault) -> list[str]:
    return [secret for role, secret in vault.secret_ids if role == "approle-provisioner/provisioner"]


def test_a_lost_ids_file_leaves_no_second_way_in(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    """The ids file is lost (or a secret_id was minted by hand): the next strict run mints one,
    and destroys every other secret_id of the role, which would otherwise never expire."""
    assert keep(busybox_curl, vault).returncode == 0
    old = json.loads(retire(busybox_curl, vault).stdout)
    stray = vault.create_secret_id("approle-provisioner/provisioner")
    assert len(provisioner_secret_ids(vault)) == 2
    # Vault lists accessors in order; this one comes last, where the list ends without a newline
    vault.secret_ids[("approle-provisioner/provisioner", stray)].accessor = "ffffffff-ffff-4fff-bfff-ffffffffffff"
    creds_file(busybox_curl).unlink()
    run = retire(busybox_curl, vault)
    assert run.returncode == 0, run.stderr
    new = json.loads(run.stdout)
    assert new["role_id"] == old["role_id"]
    assert provisioner_secret_ids(vault) == [new["secret_id"]], run.stderr
    assert "destroyed 2 older secret_id(s) of the provisioner" in run.stderr
    for gone in (old, {"role_id": old["role_id"], "secret_id": stray}):
        status, answer = login_answer(vault, gone)
        assert status == 400, answer
    login(vault, new)
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies]
    assert_no_secret_on_stderr(run, old["secret_id"], stray, new["secret_id"])


def test_a_failed_destroy_is_retried_before_the_root_token_goes(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    """Vault refuses to destroy the old secret_id: the run stops with the root token still
    kept (so nothing is lost), and the next run destroys it, then revokes the root token."""
    assert keep(busybox_curl, vault).returncode == 0
    old = json.loads(retire(busybox_curl, vault).stdout)
    creds_file(busybox_curl).unlink()
    vault.before_request = lambda n, method, path: Fault(503) if path.endswith("/secret-id-accessor/destroy") else None
    failed = retire(busybox_curl, vault)
    assert failed.returncode == 7
    assert failed.stderr.strip().splitlines()[-1] == (
        "vault-bootstrap: error: destroying an older secret_id of the provisioner failed (HTTP 503: injected fault)"
    )
    assert len(provisioner_secret_ids(vault)) == 2
    root = recovery(busybox_curl)["root_token"]
    assert lookup(vault, str(root)) == 200
    vault.before_request = None
    run = retire(busybox_curl, vault)
    assert run.returncode == 0, run.stderr
    new = json.loads(run.stdout)
    assert provisioner_secret_ids(vault) == [new["secret_id"]], run.stderr
    assert old["secret_id"] != new["secret_id"]
    assert lookup(vault, str(root)) == 403
    assert "root_token" not in recovery(busybox_curl)


@pytest.mark.parametrize(
    "cidrs",
    ["", "127.0.0.1", "127.0.0.1/33", "127.0.0/32", "127.0.0.1/32,", "256.0.0.1/32", "127.0.0.1/32\n10.0.0.1/32"],
)
def test_a_malformed_cidr_list_is_one_line(busybox_curl: Bootstrap, vault: FakeVault, cidrs: str) -> None:
    assert keep(busybox_curl, vault).returncode == 0
    before = busybox_curl.init_file.read_bytes()
    requests = len(vault.log)
    run = retire(busybox_curl, vault, cidrs=cidrs)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("vault-bootstrap: error: DEVSTACK_PROVISIONER_CIDRS must be IPv4 CIDR blocks")
    assert busybox_curl.init_file.read_bytes() == before  # the keys (and root token) untouched
    assert len(vault.log) == requests  # refused before anything was sent


def test_below_strict_a_new_root_token_comes_back(bootstrap: Bootstrap, vault: FakeVault) -> None:
    """The walk 4 -> 3: keep finds no root token (or a revoked one) and makes a new one."""
    assert keep(bootstrap, vault).returncode == 0
    first = vault.root_token
    assert retire(bootstrap, vault).returncode == 0
    run = keep(bootstrap, vault)
    assert run.returncode == 0, run.stderr
    token = json.loads(run.stdout)["root_token"]
    assert token != first
    assert lookup(vault, token) == 200
    assert vault.tokens[token].policies == ("root",)
    assert recovery(bootstrap)["root_token"] == token
    assert recovery(bootstrap)["keys"] == vault.init_result().keys
    assert stat.S_IMODE(busybox_mode(bootstrap)) == 0o600
    assert vault.count("sys/generate-root/update", "PUT") == 3  # the threshold, one key a call
    assert_no_secret_on_stderr(run, token)
    # the next run keeps it (it works)
    again = keep(bootstrap, vault)
    assert json.loads(again.stdout)["root_token"] == token
    assert vault.count("sys/generate-root/update", "PUT") == 3
    # and a token revoked behind its back (by hand, say) is replaced as well
    vault.revoked_tokens[token] = vault.tokens.pop(token)
    third = keep(bootstrap, vault)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["root_token"] not in (token, first)


def busybox_mode(bootstrap: Bootstrap) -> int:
    return bootstrap.init_file.stat().st_mode


def test_an_unfinished_generation_is_cancelled_first(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    assert keep(busybox_curl, vault).returncode == 0
    assert retire(busybox_curl, vault).returncode == 0
    status, _ = vault.handle("PUT", "/v1/sys/generate-root/attempt", _headers(), b"{}")
    assert status == 200
    run = keep(busybox_curl, vault)
    assert run.returncode == 0, run.stderr
    assert "cancelling an unfinished root token generation" in run.stderr
    assert lookup(vault, json.loads(run.stdout)["root_token"]) == 200


def test_retire_needs_curl_and_the_policy(toolboxes: Path, tmp_path: Path, vault: FakeVault) -> None:
    wget = make_bootstrap(tmp_path, VARIANTS[0], make_toolbox(toolboxes, "busybox"))
    run = retire(wget, vault)
    assert run.returncode == 1
    assert "needs curl" in run.stderr
    missing = retire(wget, vault, tmp_path / "absent.hcl")
    assert missing.returncode == 1
    assert "missing or unreadable" in missing.stderr
    bad = wget.run(vault.address, DEVSTACK_ROOT_TOKEN="sometimes")
    assert bad.returncode == 1
    assert "keep, retire or none" in bad.stderr


def test_unseal_only_leaves_a_retired_token_retired(busybox_curl: Bootstrap, vault: FakeVault) -> None:
    """The docs' unseal-by-hand line (DEVSTACK_ROOT_TOKEN=none) after a restart at strict."""
    assert keep(busybox_curl, vault).returncode == 0
    assert retire(busybox_curl, vault).returncode == 0
    vault.seal()
    run = busybox_curl.run(vault.address, DEVSTACK_NO_INIT="1", DEVSTACK_ROOT_TOKEN="none")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "{}\n"
    assert not vault.sealed
    assert vault.count("sys/generate-root/attempt") == 0
    assert "root_token" not in recovery(busybox_curl)


# -- faults: the keys are never lost, and a later run always finds its way ----------------------


def _steps(bootstrap: Bootstrap, before: str) -> list[tuple[str, str]]:
    """The requests of an undisturbed run in mode `before` -> the other mode, from scratch."""
    with FakeVault() as vault:
        assert keep(bootstrap, vault).returncode == 0
        if before == "keep":
            start = len(vault.log)
            assert retire(bootstrap, vault).returncode == 0
        else:
            assert retire(bootstrap, vault).returncode == 0
            start = len(vault.log)
            assert keep(bootstrap, vault).returncode == 0
        steps = [(r.method, r.path) for r in vault.log[start:]]
    _reset(bootstrap)
    return steps


def _reset(bootstrap: Bootstrap) -> None:
    for path in bootstrap.init_file.parent.iterdir():
        path.unlink()


def assert_way_back(bootstrap: Bootstrap, vault: FakeVault, what: str) -> None:
    """The keys are whole and private, and both modes work again once the fault is gone."""
    vault.before_request = None
    kept = recovery(bootstrap)
    assert kept["keys_base64"] == vault.init_result().keys_base64, what
    assert stat.S_IMODE(bootstrap.init_file.stat().st_mode) == 0o600, what
    for path in bootstrap.init_file.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (what, path.name)
        assert ".new." not in path.name, (what, path.name)
    back = keep(bootstrap, vault)
    assert back.returncode == 0, f"{what}: {back.stderr}"
    assert lookup(vault, json.loads(back.stdout)["root_token"]) == 200, what
    strict = retire(bootstrap, vault)
    assert strict.returncode == 0, f"{what}: {strict.stderr}"
    login(vault, json.loads(strict.stdout))
    assert not [t for t, e in vault.tokens.items() if "root" in e.policies], what
    assert provisioner_secret_ids(vault) == [json.loads(strict.stdout)["secret_id"]], what


@pytest.mark.parametrize("direction", ["keep", "retire"], ids=["4-to-3", "3-to-4"])
def test_every_request_of_the_switch_fails_in_turn(busybox_curl: Bootstrap, direction: str) -> None:
    """3 -> 4 (retire) and 4 -> 3 (keep), each request failing once (an error answer)."""
    steps = _steps(busybox_curl, "retire" if direction == "keep" else "keep")
    assert len(steps) >= 6, steps
    for number in range(1, len(steps) + 1):
        what = f"{direction}: request {number} {steps[number - 1]} fails"
        with FakeVault() as vault:
            assert keep(busybox_curl, vault).returncode == 0
            if direction == "keep":
                assert retire(busybox_curl, vault).returncode == 0
            offset = len(vault.log)
            vault.before_request = lambda n, m, p, at=offset + number: Fault(500) if n == at else None
            run = keep(busybox_curl, vault) if direction == "keep" else retire(busybox_curl, vault)
            faulted = vault.log[offset + number - 1]
            assert ((faulted.method, faulted.path), faulted.status) == (steps[number - 1], 500), what
            # it stops (or, for a status poll, tries again): never a success with nothing to show
            assert run.returncode != 0 or json.loads(run.stdout), what
            assert_way_back(busybox_curl, vault, what)
        _reset(busybox_curl)


def test_a_signal_with_any_request_of_the_way_back(busybox_curl: Bootstrap) -> None:
    """4 -> 3 interrupted (SIGTERM) with each request in turn: keys whole, a later run recovers."""
    steps = _steps(busybox_curl, "retire")
    for number in range(1, len(steps) + 1):
        what = f"SIGTERM with request {number} {steps[number - 1]}"
        with FakeVault() as vault:
            assert keep(busybox_curl, vault).returncode == 0
            assert retire(busybox_curl, vault).returncode == 0
            at = len(vault.log) + number

            def interrupt(n: int, method: str, path: str, at: int = at) -> None:
                if n == at and busybox_curl.pid is not None:
                    os.kill(busybox_curl.pid, signal.SIGTERM)

            vault.before_request = interrupt
            run = keep(busybox_curl, vault)
            assert run.returncode in (0, 143), what
            assert_way_back(busybox_curl, vault, what)
        _reset(busybox_curl)
