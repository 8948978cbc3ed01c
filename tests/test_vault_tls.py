"""Vault on HTTPS: its listeners per TLS mode, how this machine and every container reach it and
what they verify it with."""

from __future__ import annotations

import hcl2
import pytest
from cryptography import x509

from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.errors import ConfigError
from devstack.phases import TlsMode
from devstack.services.vault import vault_hcl
from devstack.settings import load_settings
from devstack.tls import CA_FILE, TLS_DIR
from tests.conftest import PlanFactory, containers
from tools.diff import diff_plans
from tools.engine import PlanRun, unwrap

ALL = "profiles=full,reference"
VAULT = SERVICES_BY_NAME["vault"]
COMMAND = "command:local:Command"
ROOT = "tls:index/selfSignedCert:SelfSignedCert"


def _unquote(value: object) -> object:
    # python-hcl2 8 keeps a string's quotes
    return value[1:-1] if isinstance(value, str) and value.startswith('"') else value


def _listeners(mode: TlsMode) -> list[dict]:
    """The listener blocks of the generated vault.hcl, parsed as HCL."""
    document = hcl2.loads(vault_hcl(VAULT, mode))
    return [{k: _unquote(v) for k, v in block['"tcp"'].items()} for block in document["listener"]]


def _env(inputs: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inputs.get("envs", []))


def _root_pem(run: PlanRun) -> str:
    (root,) = run.by_type(ROOT)
    return unwrap(root.outputs["certPem"])


def test_off_is_one_plain_listener() -> None:
    (listener,) = _listeners(TlsMode.OFF)
    assert listener["address"] == "0.0.0.0:8200"
    assert listener["tls_disable"] is True
    assert 'api_addr = "http://vault:8200"' in vault_hcl(VAULT, TlsMode.OFF)


def test_dual_offers_https_on_its_own_port_beside_plain() -> None:
    plain, tls = _listeners(TlsMode.DUAL)
    assert plain["address"] == "0.0.0.0:8200"
    assert plain["tls_disable"] is True
    assert tls["address"] == "0.0.0.0:8300"
    assert "tls_disable" not in tls
    assert tls["tls_cert_file"] == f"{TLS_DIR}/server.crt"
    assert tls["tls_key_file"] == f"{TLS_DIR}/server.key"
    assert tls["tls_min_version"] == "tls12"


def test_required_serves_only_https_on_the_api_port() -> None:
    (listener,) = _listeners(TlsMode.REQUIRED)
    assert listener["address"] == "0.0.0.0:8200"
    assert "tls_disable" not in listener
    suites = listener["tls_cipher_suites"].split(",")
    assert suites
    assert all("_ECDHE_" in s and "_GCM_" in s for s in suites)
    assert 'api_addr = "https://vault:8200"' in vault_hcl(VAULT, TlsMode.REQUIRED)


@pytest.mark.parametrize(
    ("overrides", "address", "ca"),
    [
        ({"devstack:phase": "0"}, "http://127.0.0.1:8200", False),
        ({"devstack:phase": "1"}, "https://127.0.0.1:8300", True),
        ({"devstack:phase": "4"}, "https://127.0.0.1:8200", True),
        ({"devstack:phase": "1", "devstack:features": "tls=off"}, "http://127.0.0.1:8200", False),
        ({"devstack:phase": "2", "devstack:hostPorts": "vault.https=18300"}, "https://127.0.0.1:18300", True),
    ],
)
def test_this_machine_reaches_vault_over_https_once_offered(overrides: dict, address: str, ca: bool) -> None:
    settings = load_settings(overrides, "dev")
    assert settings.vault_host_address == address
    ca_file = settings.vault_ca_file
    assert (ca_file is not None) is ca
    if ca_file is not None:
        assert ca_file.endswith("/dev/ca.pem")


def test_dual_mode_needs_the_https_port_published() -> None:
    with pytest.raises(ConfigError, match=r"vault.https must stay published"):
        load_settings({"devstack:phase": "1", "devstack:hostPorts": "vault.https=none"}, "dev")
    # Without TLS the port is not used, so it may go.
    load_settings({"devstack:phase": "0", "devstack:hostPorts": "vault.https=none"}, "dev")


def test_phase0_has_no_ca_file_and_a_plain_provider(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=0")
    assert [r.name for r in run.by_type(COMMAND) if r.name == "vault-ca-file"] == []
    (provider,) = run.by_type("pulumi:providers:vault")
    assert provider.inputs["address"].startswith("http://")
    assert "caCertFile" not in provider.inputs
    assert "vaultCaFile" not in run.outputs
    assert "DEVSTACK_VAULT_CA" not in run.one(COMMAND, "vault-init").inputs["environment"]


@pytest.mark.parametrize("phase", [1, 4])
def test_the_host_verifies_vault_with_the_ca_written_before_the_bootstrap(shared_plan: PlanFactory, phase: int) -> None:
    run = shared_plan(ALL, f"phase={phase}")
    ca_file = run.one(COMMAND, "vault-ca-file")
    path = ca_file.inputs["environment"]["DEVSTACK_CA_FILE"]
    assert unwrap(ca_file.inputs["stdin"]) == _root_pem(run)
    assert "delete" in ca_file.inputs
    assert "triggers" not in ca_file.inputs
    for step in ("vault-init", "vault-unseal"):
        command = run.one(COMMAND, step)
        assert command.inputs["environment"]["DEVSTACK_VAULT_CA"] == path
        assert command.inputs["environment"]["VAULT_ADDR"].startswith("https://127.0.0.1:")
    assert ca_file.urn in run.one(COMMAND, "vault-init").dependencies
    (provider,) = run.by_type("pulumi:providers:vault")
    assert provider.inputs["caCertFile"] == path
    assert run.outputs["vaultCaFile"] == path
    assert provider.inputs["address"] == run.one(COMMAND, "vault-init").inputs["environment"]["VAULT_ADDR"]


def test_vault_container_per_mode(shared_plan: PlanFactory) -> None:
    dual = containers(shared_plan(ALL, "phase=1"))["dev-vault"]
    required = containers(shared_plan(ALL, "phase=4"))["dev-vault"]
    assert {p["internal"] for p in dual["ports"]} == {8200, 8300}
    assert {p["internal"] for p in required["ports"]} == {8200}  # 8300 was only the migration's
    # Dual: the plain probe still works; required: `vault status` verifies the certificate.
    assert "http://127.0.0.1:8200" in " ".join(dual["healthcheck"]["tests"])
    probe = " ".join(required["healthcheck"]["tests"])
    assert "vault status" in probe
    assert f"VAULT_CACERT={TLS_DIR}/{CA_FILE}" in probe
    assert "https://localhost" in probe
    key = next(u for u in required["uploads"] if u["file"] == f"{TLS_DIR}/server.key")
    assert key["permissions"] == "0600"


def _wrapped(run: PlanRun) -> dict[str, dict]:
    return {name: inputs for name, inputs in containers(run).items() if "DEVSTACK_SECRET_PATH" in _env(inputs)}


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_containers_reach_vault_over_verified_https_in_dual_mode(shared_plan: PlanFactory, phase: int) -> None:
    """The AppRole login and the read cross the bridges over HTTPS on Vault's dual-mode port,
    verified against the stack's CA: no container is left on the plain listener."""
    run = shared_plan(ALL, f"phase={phase}")
    root = _root_pem(run)
    wrapped = _wrapped(run)
    assert len(wrapped) > 10
    for name, inputs in wrapped.items():
        env = _env(inputs)
        assert env["VAULT_ADDR"] == "https://vault:8300", name
        assert env["DEVSTACK_VAULT_CA"] == f"{TLS_DIR}/{CA_FILE}", name
        uploads = {u["file"]: u for u in inputs["uploads"]}
        assert unwrap(uploads[f"{TLS_DIR}/{CA_FILE}"]["content"]) == root, name


# Who still reaches Vault's plain listener in dual mode, and why: none of them holds a token.
PLAIN_VAULT_USERS_IN_DUAL = {"prometheus": "scrapes /v1/sys/metrics (no token) on the listener it scrapes"}


def test_the_plain_listener_serves_only_what_cannot_or_need_not_use_https(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=2")
    plain = set()
    for name, inputs in containers(run).items():
        text = " ".join(str(v) for v in _env(inputs).values())
        text += " ".join(str(unwrap(u["content"])) for u in inputs.get("uploads", []) if u["file"].endswith(".yml"))
        if "http://vault:8200" in text or "vault:8200" in text.replace("https://vault:8200", ""):
            plain.add(name.removeprefix("dev-"))
    assert plain == set(PLAIN_VAULT_USERS_IN_DUAL)


def test_once_required_every_container_verifies_vault_against_the_ca(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=4")
    root = _root_pem(run)
    wrapped = _wrapped(run)
    assert len(wrapped) > 10
    for name, inputs in wrapped.items():
        env = _env(inputs)
        assert env["VAULT_ADDR"] == "https://vault:8200", name
        assert env["DEVSTACK_VAULT_CA"] == f"{TLS_DIR}/{CA_FILE}", name
        uploads = {u["file"]: u for u in inputs["uploads"]}
        assert unwrap(uploads[f"{TLS_DIR}/{CA_FILE}"]["content"]) == root, name


def test_the_system_bundle_holds_the_ca_only_where_busybox_wget_is_the_client(shared_plan: PlanFactory) -> None:
    by_container = {s.container_name: s for s in SERVICES}
    for phase, expected in ((1, True), (4, True)):
        run = shared_plan(ALL, f"phase={phase}")
        root = _root_pem(run)
        for name, inputs in containers(run).items():
            bundle = [u for u in inputs.get("uploads", []) if u["file"] == "/etc/ssl/cert.pem"]
            wants = expected and by_container[name].system_ca_bundle
            assert bool(bundle) is wants, name
            if bundle:
                assert unwrap(bundle[0]["content"]) == root
                assert bundle[0]["permissions"] == "0444"


def test_the_vault_certificate_names_what_clients_dial(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=4")
    cert = x509.load_pem_x509_certificate(
        unwrap(run.one("tls:index/locallySignedCert:LocallySignedCert", "vault-tls").outputs["certPem"]).encode()
    )
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"vault", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(a) for a in names.get_values_for_type(x509.IPAddress)}


def test_each_upload_path_appears_once(shared_plan: PlanFactory) -> None:
    for phase in (0, 1, 4):
        for name, inputs in containers(shared_plan(ALL, f"phase={phase}")).items():
            paths = [u["file"] for u in inputs.get("uploads", [])]
            assert len(paths) == len(set(paths)), (phase, name)


@pytest.mark.parametrize(("before", "after"), [(0, 1), (1, 4), (4, 0)])
def test_moving_vault_to_https_updates_the_provider_and_keeps_what_it_manages(
    shared_plan: PlanFactory, before: int, after: int
) -> None:
    changes = diff_plans(shared_plan(ALL, f"phase={before}"), shared_plan(ALL, f"phase={after}"))
    provider = [c for c in changes.changes if c.type == "pulumi:providers:vault"]
    assert [c.action for c in provider] == ["update"]
    # A replaced provider would replace every Vault resource with it: none is.
    assert not [c for c in changes.of("replace") if c.type.startswith("vault:")]
    assert not [c for c in changes.of("delete") if c.type == "vault:index/mount:Mount"]


@pytest.mark.parametrize(("phase", "strict"), [(3, False), (4, True)])
def test_at_strict_no_wrapper_may_show_the_token_on_a_command_line(
    shared_plan: PlanFactory, phase: int, strict: bool
) -> None:
    """DEVSTACK_NO_TOKEN_ARGV=1 from the strict feature: the wrapper never falls back to busybox
    wget (tests/test_entrypoint_token_argv_sh.py: nc + ssl_client instead, or a clear failure)."""
    wrapped = _wrapped(shared_plan(ALL, f"phase={phase}"))
    assert len(wrapped) > 10
    for name, inputs in wrapped.items():
        assert (_env(inputs).get("DEVSTACK_NO_TOKEN_ARGV") == "1") is strict, name
