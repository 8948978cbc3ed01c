"""`python -m tools.plan certs`: the inventory is read from the plan's own certificates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from devstack.catalog import SERVICES_BY_NAME
from devstack.certificates import RENEWAL_PERIOD_DAYS
from tests.conftest import PlanFactory
from tools.certs import ROOT, SIGNED, CertificateInfo, inventory, render_inventory
from tools.engine import PlanRun, ResourceRecord, unwrap
from tools.plan import main

PHASE1 = ("phase=1", "profiles=minimal")


def _certificate(key: object, *extensions: tuple[x509.ExtensionType, bool]) -> str:
    """A self-signed certificate with the given key and extensions, as PEM."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "made here")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(7)
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[arg-type]


def _run_of(*records: tuple[str, str, dict]) -> PlanRun:
    resources = [
        ResourceRecord(
            urn=f"urn:pulumi:dev::devstack::{type_}::{name}",
            type=type_,
            name=name,
            parent="",
            custom=True,
            provider="",
            dependencies=[],
            inputs={"earlyRenewalHours": 48},
            outputs=outputs,
            options={},
        )
        for type_, name, outputs in records
    ]
    return PlanRun("devstack", "dev", {}, resources, {})


def test_the_inventory_is_each_planned_certificate_read_back(shared_plan: PlanFactory) -> None:
    run = shared_plan(*PHASE1)
    entries = {e.resource: e for e in inventory(run)}
    planned = {r.name for r in [*run.by_type(ROOT), *run.by_type(SIGNED)]}
    assert set(entries) == planned
    root, intermediate = entries["ca-root"], entries["ca-intermediate"]
    assert root.ca
    assert intermediate.ca
    assert root.issuer == root.subject  # self-signed
    assert intermediate.issuer == root.subject
    for name, entry in entries.items():
        if entry.ca:
            continue
        record = run.one(SIGNED, name)
        pem = x509.load_pem_x509_certificate(unwrap(record.outputs["certPem"]).encode())
        assert entry.issuer == intermediate.subject
        assert entry.not_after == pem.not_valid_after_utc.isoformat()
        # Replaced from the start of the renewal period after the one its subject names.
        (unit,) = pem.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        period = int(str(unit.value).removeprefix("renewal period "))
        start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=(period + 1) * RENEWAL_PERIOD_DAYS)
        assert entry.renewal == start.isoformat()
        assert entry.renewal < entry.not_after
        assert entry.key == "ECDSA secp256r1"
    postgres = entries["postgres-tls"]
    assert {"postgres", SERVICES_BY_NAME["postgres"].container_name, "127.0.0.1"} <= set(postgres.sans)


def test_key_types_and_missing_extensions_are_named_not_guessed() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate(
        rsa_key,
        (x509.SubjectAlternativeName([x509.DNSName("a.test")]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
    )
    bare = _certificate(ed25519.Ed25519PrivateKey.generate())  # no SANs, no basic constraints
    run = _run_of((SIGNED, "rsa", {"certPem": leaf}), (SIGNED, "bare", {"certPem": bare}), (SIGNED, "unknown", {}))
    entries = {e.resource: e for e in inventory(run)}
    assert set(entries) == {"rsa", "bare"}  # a certificate not issued yet (no PEM) is left out
    assert entries["rsa"].key == "RSA 2048"
    assert entries["rsa"].sans == ("a.test",)
    assert not entries["rsa"].ca
    assert entries["bare"].key == "Ed25519PublicKey"
    assert entries["bare"].sans == ()
    assert not entries["bare"].ca
    assert entries["bare"].renewal == ""  # no renewal period in its subject: never replaced by itself


def test_render_lists_each_certificate_and_its_sans() -> None:
    entry = CertificateInfo("x-tls", "CN=x", "CN=ca", ("x", "127.0.0.1"), "ECDSA secp256r1", "2027", "2026", False)
    ca = CertificateInfo("ca", "CN=ca", "CN=ca", (), "ECDSA secp384r1", "2036", "", True)
    text = render_inventory([ca, entry])
    assert text.splitlines() == [
        "ca (CA)",
        "  subject   CN=ca",
        "  issuer    CN=ca",
        "  key       ECDSA secp384r1",
        "  not after 2036   not renewed by `pulumi up` by itself",
        "x-tls",
        "  subject   CN=x",
        "  issuer    CN=ca",
        "  key       ECDSA secp256r1",
        "  not after 2027   renewed from 2026",
        "  SANs      x, 127.0.0.1",
    ]


def test_certs_command_text_and_json(
    shared_plan: PlanFactory, capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert main(["certs", *(a for o in PHASE1 for a in ("--set", o))]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ca-root (CA)\n")
    assert "postgres-tls\n" in text
    assert main(["certs", "--json", *(a for o in PHASE1 for a in ("--set", o))]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "devstack-certs/1"
    names = [c["resource"] for c in document["certificates"]]
    assert names[:2] == ["ca-root", "ca-intermediate"]
    assert names == [e.resource for e in inventory(shared_plan(*PHASE1))]
    assert set(document["certificates"][0]) == set(CertificateInfo.__dataclass_fields__)


def test_phase0_has_no_certificates(
    shared_plan: PlanFactory, capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert inventory(shared_plan("profiles=minimal")) == []
    assert main(["certs", "--set", "profiles=minimal"]) == 0
    assert capsys.readouterr().out == "No certificates in this plan: TLS is off (phase 0). Try --set phase=1.\n"
