"""Phase 1b foundation: the certificate chain, with real keys and certificates from the mocks."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.services.rabbitmq import RABBITMQ_CIPHERS
from devstack.tls import CIPHERS, TLS_DIR
from tests.conftest import CONTAINER, PlanFactory
from tests.plancache import own_plan
from tools.diff import diff_plans
from tools.engine import PlanRun, Secret, unwrap
from tools.plan import plan_for

ALL = "profiles=full,reference"
KEY = "tls:index/privateKey:PrivateKey"
ROOT = "tls:index/selfSignedCert:SelfSignedCert"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[None]:
    from tools.engine import tls_mocks

    os.environ["DEVSTACK_NOW"] = T0.isoformat()
    tls_mocks.set_clock(T0)
    yield
    os.environ.pop("DEVSTACK_NOW", None)
    tls_mocks.set_clock(None)


def _pem(record) -> x509.Certificate:
    return x509.load_pem_x509_certificate(unwrap(record.outputs["certPem"]).encode())


def _chain(run: PlanRun) -> tuple[x509.Certificate, x509.Certificate]:
    (root,) = run.by_type(ROOT)
    return _pem(root), _pem(run.one(SIGNED, "ca-intermediate"))


def test_phase0_has_no_certificate_and_no_tls_file(shared_plan: PlanFactory) -> None:
    run = shared_plan(ALL, "phase=0")
    assert not [r for r in run.resources if r.type.startswith("tls:")]
    for record in run.by_type(CONTAINER):
        assert not [u for u in record.inputs.get("uploads", []) if u["file"].startswith(TLS_DIR)]
    assert "caBundle" not in run.outputs


def test_root_and_intermediate(shared_plan: PlanFactory, clock: None) -> None:
    run = shared_plan(ALL, "phase=1")
    root, intermediate = _chain(run)
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert intermediate.issuer == root.subject
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # pulumi-tls cannot write pathLen 0 (it never sets Go's MaxPathLenZero); the root's pathLen 1
    # gives the same guarantee, proven below: no CA under the intermediate validates.
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    intermediate.verify_directly_issued_by(root)
    for certificate in (root, intermediate):
        key = certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp384r1"


def test_root_key_signs_only_the_intermediate(shared_plan: PlanFactory, clock: None) -> None:
    run = shared_plan(ALL, "phase=1")
    root_key = run.one(KEY, "ca-root").urn
    signed_by_root = [r.name for r in run.by_type(SIGNED) if root_key in r.dependencies]
    assert signed_by_root == ["ca-intermediate"]


def test_every_leaf_chains_to_the_root_with_the_right_names(shared_plan: PlanFactory, clock: None) -> None:
    run = shared_plan(ALL, "phase=1")
    root, intermediate = _chain(run)
    leaves = {r.name.removesuffix("-tls"): _pem(r) for r in run.by_type(SIGNED) if r.name.endswith("-tls")}
    assert set(leaves) == {
        s.name for s in SERVICES if s.tls is not None and s.switch in (None, "databaseExporters") and s.feature is None
    }
    from cryptography.x509.verification import PolicyBuilder, Store

    policy = PolicyBuilder().store(Store([root])).time(T0 + timedelta(hours=1))
    for name, leaf in leaves.items():
        leaf.verify_directly_issued_by(intermediate)
        policy.build_server_verifier(x509.DNSName(name)).verify(leaf, [intermediate])
        assert leaf.not_valid_before_utc <= T0 + timedelta(minutes=1)
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=90)
        key = leaf.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.key_size >= 256
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(sans.get_values_for_type(x509.DNSName))
        addresses = {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
        assert {name, f"dev-{name}", "localhost"} <= dns
        assert "127.0.0.1" in addresses
        attachments = run.one(CONTAINER, name).inputs["networksAdvanced"]
        assert {a["ipv4Address"] for a in attachments if a.get("ipv4Address")} <= addresses
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert SERVICES_BY_NAME["vault"].name in leaves


def test_no_weak_keys(shared_plan: PlanFactory, clock: None) -> None:
    run = shared_plan(ALL, "phase=1")
    for key in run.by_type(KEY):
        assert key.inputs["algorithm"] == "ECDSA"
        assert key.inputs["ecdsaCurve"] in ("P256", "P384"), key.name
        assert isinstance(key.outputs["privateKeyPem"], Secret)


def test_files_reach_the_containers_with_owner_and_mode(shared_plan: PlanFactory, clock: None) -> None:
    run = shared_plan(ALL, "phase=1")
    postgres = {u["file"]: u for u in run.one(CONTAINER, "postgres").inputs["uploads"]}
    key = postgres[f"{TLS_DIR}/server.key"]
    assert isinstance(key["content"], Secret)
    assert key["permissions"] == "0600"
    assert key["owner"] == "999"
    assert "BEGIN CERTIFICATE" in postgres[f"{TLS_DIR}/ca.crt"]["content"]
    bundle = unwrap(run.outputs["caBundle"])
    assert bundle.count("BEGIN CERTIFICATE") == 2


def test_a_certificate_is_replaced_once_in_its_renewal_window(clock: None, cached_commands: None) -> None:
    from tools.engine import tls_mocks

    issued = own_plan("phase=1", "profiles=minimal")
    # Ten days later nothing is due.
    os.environ["DEVSTACK_NOW"] = (T0 + timedelta(days=10)).isoformat()
    later = plan_for("dev", ["phase=1", "profiles=minimal"], state=issued.state)
    assert not [c for c in diff_plans(issued, later).changes if c.type == SIGNED]
    # 61 days on, the certificate is inside its 30-day window (the provider says so too)...
    moment = T0 + timedelta(days=61)
    tls_mocks.set_clock(moment)
    old = _pem(issued.one(SIGNED, "postgres-tls"))
    assert old.not_valid_after_utc - moment <= timedelta(days=30)
    os.environ["DEVSTACK_NOW"] = moment.isoformat()
    renewed = plan_for("dev", ["phase=1", "profiles=minimal"], state=issued.state)
    changes = {(c.type, c.name): c for c in diff_plans(issued, renewed).changes}
    # ...and the next run replaces it, and the container that uses it.
    assert changes[(SIGNED, "postgres-tls")].action == "replace"
    assert changes[(CONTAINER, "postgres")].action == "replace"
    new = _pem(renewed.one(SIGNED, "postgres-tls"))
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc - moment == timedelta(days=90)
    assert (SIGNED, "ca-intermediate") not in changes


def _issue(subject: str, issuer: x509.Certificate, issuer_key, public_key, *, ca: bool):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = T0
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def test_chain_validates_for_a_leaf_and_refuses_a_ca_below_the_intermediate(
    shared_plan: PlanFactory, clock: None
) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    run = shared_plan("profiles=minimal", "phase=1")
    root, intermediate = _chain(run)
    intermediate_key = load_pem_private_key(
        unwrap(run.one(KEY, "ca-intermediate").outputs["privateKeyPem"]).encode(), None
    )
    moment = T0 + timedelta(hours=1)
    verifier = PolicyBuilder().store(Store([root])).time(moment).build_server_verifier(x509.DNSName("postgres"))
    verifier.verify(_pem(run.one(SIGNED, "postgres-tls")), [intermediate])
    # Control: a leaf made the same way directly under the intermediate validates...
    direct = _issue(
        "postgres", intermediate, intermediate_key, ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False
    )
    verifier.verify(direct, [intermediate])
    # ...but under a CA that the intermediate signed, it is one level too deep for the root's pathLen 1.
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub_ca = _issue("rogue sub CA", intermediate, intermediate_key, sub_key.public_key(), ca=True)
    rogue = _issue("postgres", sub_ca, sub_key, ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False)
    with pytest.raises(VerificationError):
        verifier.verify(rogue, [intermediate, sub_ca])


@pytest.mark.parametrize(("phase", "hba"), [(1, False), (4, True)])
def test_postgres_tls_settings_follow_the_mode(shared_plan: PlanFactory, phase: int, hba: bool) -> None:
    postgres = shared_plan("profiles=minimal", f"phase={phase}").one(CONTAINER, "postgres").inputs
    command = postgres["command"]
    assert command[:2] == ["docker-entrypoint.sh", "postgres"]
    assert "ssl=on" in command
    assert "ssl_min_protocol_version=TLSv1.2" in command
    assert ("hba_file=/devstack/tls/pg_hba.conf" in command) is hba
    uploads = {u["file"]: u for u in postgres["uploads"]}
    assert (f"{TLS_DIR}/pg_hba.conf" in uploads) is hba
    if hba:
        assert "hostnossl all  all  0.0.0.0/0       reject" in uploads[f"{TLS_DIR}/pg_hba.conf"]["content"]


def test_phase0_postgres_has_no_tls_setting(shared_plan: PlanFactory) -> None:
    command = shared_plan("profiles=minimal").one(CONTAINER, "postgres").inputs["command"]
    assert command == ["docker-entrypoint.sh", "postgres"]


@pytest.mark.parametrize(("phase", "plain_open"), [(1, True), (4, False)])
def test_redis_tls_settings_follow_the_mode(shared_plan: PlanFactory, phase: int, plain_open: bool) -> None:
    run = shared_plan("profiles=standard", f"phase={phase}")
    node = run.one(CONTAINER, "redis-1").inputs
    conf = next(u["content"] for u in node["uploads"] if u["file"] == "/devstack/redis.conf")
    assert "tls-port 6380" in conf
    assert 'tls-protocols "TLSv1.2 TLSv1.3"' in conf
    assert ("port 6379" in conf.splitlines()) is plain_open
    assert ("port 0" in conf.splitlines()) is not plain_open
    probe = node["healthcheck"]["tests"][1]
    assert ("--tls" in probe) is not plain_open
    create = run.one("command:local:Command", "redis-cluster-create").inputs["create"]
    assert create.endswith("172.20.2.17:6379" if plain_open else "172.20.2.17:6380")
    assert ("DEVSTACK_REDIS_TLS_CA" in create) is not plain_open


@pytest.mark.parametrize(("phase", "required"), [(1, False), (4, True)])
def test_mysql_and_pgbouncer_tls_settings_follow_the_mode(shared_plan: PlanFactory, phase: int, required: bool) -> None:
    run = shared_plan("profiles=standard", f"phase={phase}")
    mysql = run.one(CONTAINER, "mysql").inputs["command"]
    assert mysql[:2] == ["docker-entrypoint.sh", "mysqld"]
    assert "--tls-version=TLSv1.2,TLSv1.3" in mysql
    assert ("--require-secure-transport=ON" in mysql) is required
    ini = next(
        u["content"] for u in run.one(CONTAINER, "pgbouncer").inputs["uploads"] if u["file"].endswith("pgbouncer.ini")
    )
    assert f"client_tls_sslmode = {'require' if required else 'allow'}" in ini
    assert f"server_tls_sslmode = {'verify-full' if required else 'prefer'}" in ini


def test_phase0_mysql_and_pgbouncer_have_no_tls(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=standard")
    assert run.one(CONTAINER, "mysql").inputs["command"] == ["docker-entrypoint.sh", "mysqld"]
    ini = next(
        u["content"] for u in run.one(CONTAINER, "pgbouncer").inputs["uploads"] if u["file"].endswith("pgbouncer.ini")
    )
    assert "tls" not in ini


@pytest.mark.parametrize(("phase", "required"), [(1, False), (4, True)])
def test_rabbitmq_and_mongodb_tls_settings_follow_the_mode(
    shared_plan: PlanFactory, phase: int, required: bool
) -> None:
    run = shared_plan("profiles=standard", f"phase={phase}")
    rabbit = {u["file"]: u for u in run.one(CONTAINER, "rabbitmq").inputs["uploads"]}
    conf = rabbit["/etc/rabbitmq/conf.d/30-devstack-tls.conf"]["content"].splitlines()
    assert "listeners.ssl.default = 5671" in conf
    assert "ssl_options.versions.2 = tlsv1.2" in conf
    assert ("listeners.tcp = none" in conf) is required
    for plugin, port, beside in (("management", 15672, 15671), ("prometheus", 15692, 15691)):
        assert (f"{plugin}.ssl.port = {port}" in conf) is required
        assert (f"{plugin}.tcp.port = {port}" in conf) is not required  # HTTP kept beside HTTPS
        assert (f"{plugin}.ssl.port = {beside}" in conf) is not required
    for prefix in ("ssl_options", "management.ssl", "prometheus.ssl"):
        listed = [line.split(" = ")[1] for line in conf if line.startswith(f"{prefix}.ciphers.")]
        assert listed == list(RABBITMQ_CIPHERS)
        assert f"{prefix}.honor_cipher_order = true" in conf
    ports = {p["internal"] for p in run.one(CONTAINER, "rabbitmq").inputs["ports"]}
    assert 5671 in ports
    assert (15671 in ports) is not required  # HTTPS beside HTTP only while clients migrate
    mongo = run.one(CONTAINER, "mongodb").inputs
    command = mongo["command"]
    assert command[command.index("--tlsMode") + 1] == ("requireTLS" if required else "preferTLS")
    assert "TLS1_0,TLS1_1" in command
    assert command[command.index("--setParameter") + 1] == f"opensslCipherConfig={CIPHERS}"
    uploads = {u["file"]: u for u in mongo["uploads"]}
    combined = uploads[f"{TLS_DIR}/mongodb.pem"]
    assert isinstance(combined["content"], Secret)
    assert "BEGIN CERTIFICATE" in combined["content"].value
    assert "PRIVATE KEY" in combined["content"].value
    assert combined["permissions"] == "0600"
    assert ("--tls" in mongo["healthcheck"]["tests"]) is required


def test_rabbitmq_suites_are_the_cipher_string_spelled_out() -> None:
    """RabbitMQ's suite list is CIPHERS as OpenSSL expands it, plus the TLS 1.3 suites."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(CIPHERS)
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert {s for s in RABBITMQ_CIPHERS if not s.startswith("TLS_")} == tls12
    assert {s for s in RABBITMQ_CIPHERS if s.startswith("TLS_")} == {
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    }


def test_every_container_trusts_the_ca_once_tls_is_on(shared_plan: PlanFactory) -> None:
    """Every client of another service; one that talks to nobody (cAdvisor) gets no file at all,
    which keeps its root filesystem read-only (an upload there is refused: tests/test_hardening_docker)."""
    run = shared_plan(ALL, "phase=1")
    root = unwrap(run.by_type(ROOT)[0].outputs["certPem"])
    for record in run.by_type(CONTAINER):
        if record.name == "vault":
            continue  # Vault's own TLS listener is still to come
        service = SERVICES_BY_NAME[record.name]
        if service.tls is None and not service.flows:
            assert not record.inputs.get("uploads"), record.name
            assert record.inputs.get("readOnly") is True, record.name
            continue
        uploads = {u["file"]: u for u in record.inputs.get("uploads", [])}
        assert uploads[f"{TLS_DIR}/ca.crt"]["content"] == root, record.name


def test_certs_renewal_date_is_when_the_next_up_replaces_the_leaf(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    import json

    from tools.plan import main

    monkeypatch.setenv("DEVSTACK_NOW", T0.isoformat())
    config = ["--set", "phase=1", "--set", "profiles=minimal"]
    assert main(["certs", "--json", *config]) == 0
    entries = {e["resource"]: e for e in json.loads(capsys.readouterr().out)["certificates"]}
    assert entries["ca-root"]["renewal"] == entries["ca-intermediate"]["renewal"] == ""
    renewal = datetime.fromisoformat(entries["postgres-tls"]["renewal"])
    assert T0 < renewal < datetime.fromisoformat(entries["postgres-tls"]["not_after"]) - timedelta(days=30)

    def replaced_at(moment: datetime) -> set[str]:
        assert main(["diff", "--json", *config, "--to-time", moment.isoformat()]) == 0
        changes = json.loads(capsys.readouterr().out)["changes"]
        return {c["name"] for c in changes if c["type"] == SIGNED and c["action"] == "replace"}

    assert replaced_at(renewal - timedelta(seconds=1)) == set()
    assert "postgres-tls" in replaced_at(renewal)
    assert os.environ["DEVSTACK_NOW"] == T0.isoformat()  # --to-time left the clock as it was
    assert main(["certs", *config]) == 0
    text = capsys.readouterr().out
    assert f"renewed from {renewal.isoformat()}" in text
    assert "not renewed by `pulumi up` by itself" in text


def test_diff_to_time_refuses_a_bad_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    from tools.plan import main

    monkeypatch.delenv("DEVSTACK_NOW", raising=False)
    assert main(["diff", "--to-time", "2027-13-01"]) == 2
    assert capsys.readouterr().err == (
        "error: --to-time: must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got '2027-13-01'\n"
    )
    assert "DEVSTACK_NOW" not in os.environ
