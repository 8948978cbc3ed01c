"""tools.engine.tls_mocks: the pulumi-tls mocks issue real keys and certificates, checked with
`cryptography` (and the openssl CLI when it is installed)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store

from tools.engine import mocks, tls_mocks
from tools.engine.context import MockContext
from tools.engine.provider_rules import SECRET_OUTPUTS
from tools.engine.tls_mocks import CERT_REQUEST, LOCALLY_SIGNED_CERT, PRIVATE_KEY, SELF_SIGNED_CERT

T0 = datetime(2026, 11, 26, 12, 0, 0, 250000, tzinfo=UTC)
CA_USES = ["cert_signing", "crl_signing", "digital_signature"]
LEAF_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
LEAF_HOURS, LEAF_EARLY_HOURS = 90 * 24, 30 * 24


@pytest.fixture(autouse=True)
def clock() -> Iterator[None]:
    tls_mocks.set_clock(T0)
    yield
    tls_mocks.set_clock(None)


def ctx(type_: str, name: str, inputs: dict[str, Any], generation: int = 0) -> MockContext:
    return MockContext(f"urn:pulumi:dev::devstack::{type_}::{name}", type_, name, inputs, generation)


def key(name: str, generation: int = 0, **inputs: Any) -> dict[str, Any]:
    return tls_mocks.private_key(ctx(PRIVATE_KEY, name, inputs, generation))[1]


def csr(name: str, key_pem: str, **inputs: Any) -> dict[str, Any]:
    return tls_mocks.cert_request(ctx(CERT_REQUEST, name, {"privateKeyPem": key_pem, **inputs}))[1]


def signed(name: str, request_pem: str, ca_key_pem: str, ca_cert_pem: str, **inputs: Any) -> tuple[str, dict[str, Any]]:
    args = {"certRequestPem": request_pem, "caPrivateKeyPem": ca_key_pem, "caCertPem": ca_cert_pem, **inputs}
    return tls_mocks.locally_signed_cert(ctx(LOCALLY_SIGNED_CERT, name, args))


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


@dataclass(frozen=True)
class Chain:
    root_key: dict[str, Any]
    root: dict[str, Any]
    root_id: str
    intermediate_key: dict[str, Any]
    intermediate: dict[str, Any]
    leaf_key: dict[str, Any]
    leaf_request: dict[str, Any]
    leaf: dict[str, Any]
    leaf_id: str

    def certificates(self) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
        return load(self.root["certPem"]), load(self.intermediate["certPem"]), load(self.leaf["certPem"])


def build_chain() -> Chain:
    """What components/pki.py declares: a P384 root, a P384 intermediate, a P256 leaf."""
    root_key = key("root", algorithm="ECDSA", ecdsaCurve="P384")
    root_inputs = {
        "privateKeyPem": root_key["privateKeyPem"],
        "subject": {"commonName": "devstack dev Root CA", "organization": "devstack"},
        "isCaCertificate": True,
        "maxPathLength": 1,
        "validityPeriodHours": 10 * 365 * 24,
        "allowedUses": CA_USES,
        "setSubjectKeyId": True,
    }
    root_id, root = tls_mocks.self_signed_cert(ctx(SELF_SIGNED_CERT, "root", root_inputs))
    intermediate_key = key("intermediate", algorithm="ECDSA", ecdsaCurve="P384")
    intermediate_request = csr(
        "intermediate",
        intermediate_key["privateKeyPem"],
        subject={"commonName": "devstack dev Intermediate CA", "organization": "devstack"},
    )
    _, intermediate = signed(
        "intermediate",
        intermediate_request["certRequestPem"],
        root_key["privateKeyPem"],
        root["certPem"],
        isCaCertificate=True,
        maxPathLength=0,
        validityPeriodHours=5 * 365 * 24,
        allowedUses=CA_USES,
        setSubjectKeyId=True,
    )
    leaf_key = key("vault", algorithm="ECDSA", ecdsaCurve="P256")
    leaf_request = csr(
        "vault",
        leaf_key["privateKeyPem"],
        subject={"commonName": "vault", "organization": "devstack", "organizationalUnit": "renewal period 7"},
        dnsNames=["vault", "dev-vault", "localhost"],
        ipAddresses=["172.30.0.10", "127.0.0.1"],
    )
    leaf_id, leaf = signed(
        "vault",
        leaf_request["certRequestPem"],
        intermediate_key["privateKeyPem"],
        intermediate["certPem"],
        validityPeriodHours=LEAF_HOURS,
        earlyRenewalHours=LEAF_EARLY_HOURS,
        allowedUses=LEAF_USES,
        setSubjectKeyId=True,
    )
    return Chain(root_key, root, root_id, intermediate_key, intermediate, leaf_key, leaf_request, leaf, leaf_id)


@pytest.fixture
def chain() -> Chain:
    return build_chain()


def extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[Any]:
    return certificate.extensions.get_extension_for_class(kind)


# --- registration ------------------------------------------------------------------------------


def test_handlers_are_registered_with_the_engine_mocks() -> None:
    for type_token, handler in tls_mocks.HANDLERS.items():
        assert mocks.HANDLERS[type_token] is handler


def test_secret_outputs_of_pulumi_tls_are_the_private_key_fields(chain: Chain) -> None:
    outputs = {
        PRIVATE_KEY: chain.root_key,
        SELF_SIGNED_CERT: chain.root,
        CERT_REQUEST: chain.leaf_request,
        LOCALLY_SIGNED_CERT: chain.leaf,
    }
    for type_token, state in outputs.items():
        secret = SECRET_OUTPUTS[type_token]
        assert secret <= state.keys(), type_token
        assert all("rivateKey" in name for name in secret), type_token
    # write-only inputs never come back
    assert chain.root["privateKeyPemWo"] is None
    assert chain.leaf["caPrivateKeyPemWo"] is None


# --- private keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "header", "key_type"),
    [
        ({"algorithm": "RSA"}, "RSA PRIVATE KEY", rsa.RSAPrivateKey),
        ({"algorithm": "ECDSA", "ecdsaCurve": "P256"}, "EC PRIVATE KEY", ec.EllipticCurvePrivateKey),
        ({"algorithm": "ECDSA", "ecdsaCurve": "P521"}, "EC PRIVATE KEY", ec.EllipticCurvePrivateKey),
        ({"algorithm": "ED25519"}, "PRIVATE KEY", ed25519.Ed25519PrivateKey),
    ],
)
def test_private_key_formats_match_the_provider(inputs: dict[str, Any], header: str, key_type: type) -> None:
    id_, state = tls_mocks.private_key(ctx(PRIVATE_KEY, "k", inputs))
    assert state["privateKeyPem"].startswith(f"-----BEGIN {header}-----\n")
    assert state["privateKeyPem"].endswith(f"-----END {header}-----\n")
    private = serialization.load_pem_private_key(state["privateKeyPem"].encode(), None)
    assert isinstance(private, key_type)
    pkcs8 = serialization.load_pem_private_key(state["privateKeyPemPkcs8"].encode(), None)
    assert state["privateKeyPemPkcs8"].startswith("-----BEGIN PRIVATE KEY-----\n")
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (
        pkcs8.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == spki
    )
    public = serialization.load_pem_public_key(state["publicKeyPem"].encode())
    assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki
    # id: hashForState of the public key's DER
    assert id_ == hashlib.sha1(spki.strip()).hexdigest()
    # OpenSSH forms
    assert state["privateKeyOpenssh"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    ssh_private = serialization.load_ssh_private_key(state["privateKeyOpenssh"].encode(), None)
    assert (
        ssh_private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == spki
    )
    assert state["publicKeyOpenssh"].endswith("\n")
    ssh_public = serialization.load_ssh_public_key(state["publicKeyOpenssh"].encode())
    assert ssh_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki
    wire = base64.b64decode(state["publicKeyOpenssh"].split()[1])
    assert state["publicKeyFingerprintSha256"] == "SHA256:" + base64.b64encode(
        hashlib.sha256(wire).digest()
    ).decode().rstrip("=")
    assert state["publicKeyFingerprintMd5"] == ":".join(f"{b:02x}" for b in hashlib.md5(wire).digest())
    assert all(
        len(line) <= 64 for pem in (state["privateKeyPem"], state["privateKeyOpenssh"]) for line in pem.split("\n")
    )


def test_private_key_defaults_are_the_providers() -> None:
    state = key("weak", algorithm="ECDSA")
    private = serialization.load_pem_private_key(state["privateKeyPem"].encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp224r1"  # pulumi-tls defaults ECDSA to P224
    assert (state["ecdsaCurve"], state["rsaBits"]) == ("P224", 2048)
    # x/crypto/ssh cannot handle P224: the provider leaves these empty
    for name in ("privateKeyOpenssh", "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256"):
        assert state[name] == ""
    rsa_key = serialization.load_pem_private_key(key("r", algorithm="RSA")["privateKeyPem"].encode(), None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 2048
    rsa_3072 = serialization.load_pem_private_key(
        key("r3", algorithm="RSA", rsaBits=3072)["privateKeyPem"].encode(), None
    )
    assert isinstance(rsa_3072, rsa.RSAPrivateKey)
    assert rsa_3072.key_size == 3072


@pytest.mark.parametrize(
    "inputs", [{"algorithm": "ECDSA", "ecdsaCurve": "P384"}, {"algorithm": "ED25519"}, {"algorithm": "RSA"}]
)
def test_keys_are_deterministic_per_urn_and_generation(inputs: dict[str, Any]) -> None:
    first = key("k", **inputs)
    assert key("k", **inputs) == first  # every output, the OpenSSH check bytes included
    assert key("k", 1, **inputs)["privateKeyPem"] != first["privateKeyPem"]  # replaced: a new key
    assert key("k", 1, **inputs) == key("k", 1, **inputs)
    assert key("other", **inputs)["privateKeyPem"] != first["privateKeyPem"]


def test_certificates_are_reproducible_under_a_fixed_clock() -> None:
    first, second = build_chain(), build_chain()
    assert first == second
    assert first.root_id == str(load(first.root["certPem"]).serial_number)


def test_hash_for_state_trims_like_go() -> None:
    trim = tls_mocks._go_trim_space
    assert trim(b" \t\nabc\r\n") == b"abc"
    assert trim(b"\xc2\xa0abc\xe3\x80\x80") == b"abc"  # U+00A0, U+3000 are spaces to Go
    assert trim(b"\xc2abc\x85") == b"\xc2abc\x85"  # invalid UTF-8 is not
    assert trim(b"") == b""
    assert tls_mocks._hash_for_state(b"") == ""


# --- the chain -----------------------------------------------------------------------------------


def test_chain_verifies_with_cryptography(chain: Chain) -> None:
    root, intermediate, leaf = chain.certificates()
    policy = PolicyBuilder().store(Store([root])).time(T0 + timedelta(hours=1))
    for name in (x509.DNSName("vault"), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("172.30.0.10"))):
        verified = policy.build_server_verifier(name).verify(leaf, [intermediate])
        assert verified == [leaf, intermediate, root]
    assert policy.build_client_verifier().verify(leaf, [intermediate]).chain == [leaf, intermediate, root]
    # and signature by signature
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)


def test_chain_fails_outside_its_validity(chain: Chain) -> None:
    root, intermediate, leaf = chain.certificates()
    for moment in (T0 - timedelta(minutes=1), T0 + timedelta(hours=LEAF_HOURS, minutes=1)):
        verifier = PolicyBuilder().store(Store([root])).time(moment).build_server_verifier(x509.DNSName("vault"))
        with pytest.raises(x509.verification.VerificationError):
            verifier.verify(leaf, [intermediate])


def test_signature_algorithms_follow_the_signing_key(chain: Chain) -> None:
    root, intermediate, leaf = chain.certificates()
    # P384 keys sign with SHA-384: the root itself, and the root and intermediate as CAs
    for certificate in (root, intermediate, leaf):
        assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    request = x509.load_pem_x509_csr(chain.leaf_request["certRequestPem"].encode())
    assert request.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256  # the P256 leaf key
    rsa_key = key("rsa", algorithm="RSA")
    _, rsa_cert = tls_mocks.self_signed_cert(
        ctx(
            SELF_SIGNED_CERT,
            "rsa",
            {"privateKeyPem": rsa_key["privateKeyPem"], "validityPeriodHours": 1, "allowedUses": ["server_auth"]},
        )
    )
    assert load(rsa_cert["certPem"]).signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert rsa_cert["keyAlgorithm"] == "RSA"
    assert chain.leaf["caKeyAlgorithm"] == "ECDSA"


def test_basic_constraints_and_key_identifiers(chain: Chain) -> None:
    root, intermediate, leaf = chain.certificates()
    constraints = [extension(c, x509.BasicConstraints) for c in (root, intermediate, leaf)]
    assert all(c.critical for c in constraints)
    assert (constraints[0].value.ca, constraints[0].value.path_length) == (True, 1)
    # maxPathLength = 0: the provider never sets MaxPathLenZero, so Go writes no pathlen at all
    assert (constraints[1].value.ca, constraints[1].value.path_length) == (True, None)
    assert (constraints[2].value.ca, constraints[2].value.path_length) == (False, None)
    assert chain.intermediate["maxPathLength"] == 0
    assert chain.leaf["maxPathLength"] is None

    def ski(certificate: x509.Certificate) -> bytes:
        return extension(certificate, x509.SubjectKeyIdentifier).value.digest

    def aki(certificate: x509.Certificate) -> bytes | None:
        return extension(certificate, x509.AuthorityKeyIdentifier).value.key_identifier

    for certificate in (root, intermediate, leaf):
        assert ski(certificate) == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    with pytest.raises(x509.ExtensionNotFound):
        extension(root, x509.AuthorityKeyIdentifier)  # self-signed: only with setAuthorityKeyId
    assert aki(intermediate) == ski(root)
    assert aki(leaf) == ski(intermediate)
    assert intermediate.issuer == root.subject
    assert leaf.issuer == intermediate.subject


def test_key_usages(chain: Chain) -> None:
    root, intermediate, leaf = chain.certificates()
    usage = extension(leaf, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert not usage.value.key_agreement
    extended = extension(leaf, x509.ExtendedKeyUsage)
    assert not extended.critical
    assert list(extended.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for ca in (root, intermediate):
        ca_usage = extension(ca, x509.KeyUsage).value
        assert (ca_usage.key_cert_sign, ca_usage.crl_sign, ca_usage.digital_signature) == (True, True, True)
        assert not ca_usage.key_encipherment
        with pytest.raises(x509.ExtensionNotFound):
            extension(ca, x509.ExtendedKeyUsage)


def test_sans_and_subject_come_from_the_request(chain: Chain) -> None:
    _, _, leaf = chain.certificates()
    san = extension(leaf, x509.SubjectAlternativeName)
    assert not san.critical  # the subject is not empty
    assert san.value.get_values_for_type(x509.DNSName) == ["vault", "dev-vault", "localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("172.30.0.10"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    # Go's order (O, OU, CN) and string type (PrintableString when it can)
    assert leaf.subject.rfc4514_string() == "CN=vault,OU=renewal period 7,O=devstack"
    assert [a.oid for a in leaf.subject] == [
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
    ]
    assert {a._type for a in leaf.subject} == {_ASN1Type.PrintableString}


def test_validity_window_and_times(chain: Chain) -> None:
    _, _, leaf = chain.certificates()
    start = T0.replace(microsecond=0)
    assert leaf.not_valid_before_utc == start
    assert leaf.not_valid_after_utc == start + timedelta(hours=LEAF_HOURS)
    assert chain.leaf["validityStartTime"] == "2026-11-26T12:00:00.25Z"  # Go's RFC 3339 with the fraction
    assert chain.leaf["validityEndTime"] == "2027-02-24T12:00:00.25Z"
    assert chain.leaf["readyForRenewal"] is False
    assert chain.leaf_id == str(leaf.serial_number)


def test_ready_for_renewal_flips_when_the_clock_passes_the_early_renewal_time(chain: Chain) -> None:
    renewal = T0 + timedelta(hours=LEAF_HOURS - LEAF_EARLY_HOURS)
    assert not tls_mocks.ready_for_renewal(chain.leaf)
    assert not tls_mocks.ready_for_renewal(chain.leaf, at=renewal - timedelta(seconds=1))
    assert tls_mocks.ready_for_renewal(chain.leaf, at=renewal)
    tls_mocks.set_clock(renewal + timedelta(minutes=1))
    assert tls_mocks.now() == renewal + timedelta(minutes=1)
    assert tls_mocks.ready_for_renewal(chain.leaf)
    assert tls_mocks.refresh(chain.leaf)["readyForRenewal"] is True
    assert tls_mocks.refresh(chain.root)["readyForRenewal"] is False  # the root has years left
    # a certificate issued inside its renewal window is ready at once (the provider's plan modifier)
    tls_mocks.set_clock(T0)
    _, early = signed(
        "early",
        chain.leaf_request["certRequestPem"],
        chain.intermediate_key["privateKeyPem"],
        chain.intermediate["certPem"],
        validityPeriodHours=24,
        earlyRenewalHours=24,
        allowedUses=LEAF_USES,
    )
    assert early["readyForRenewal"] is True


def test_now_follows_devstack_now_unless_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    tls_mocks.set_clock(None)
    monkeypatch.setenv("DEVSTACK_NOW", "2030-01-02T03:04:05Z")
    assert tls_mocks.now() == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    tls_mocks.set_clock(datetime(2031, 1, 1))  # naive: UTC
    assert tls_mocks.now() == datetime(2031, 1, 1, tzinfo=UTC)


# --- certificate requests ------------------------------------------------------------------------


def test_cert_request_is_signed_by_its_key(chain: Chain) -> None:
    request = x509.load_pem_x509_csr(chain.leaf_request["certRequestPem"].encode())
    assert request.is_signature_valid
    leaf_key = serialization.load_pem_private_key(chain.leaf_key["privateKeyPem"].encode(), None)
    assert request.public_key() == leaf_key.public_key()
    assert chain.leaf_request["keyAlgorithm"] == "ECDSA"
    der = request.public_bytes(serialization.Encoding.DER)
    id_, _ = tls_mocks.cert_request(
        ctx(
            CERT_REQUEST,
            "vault",
            {
                k: v
                for k, v in chain.leaf_request.items()
                if k in {"privateKeyPem", "subject", "dnsNames", "ipAddresses"}
            },
        )
    )
    assert id_ == hashlib.sha1(der.strip()).hexdigest()
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["vault", "dev-vault", "localhost"]


def test_locally_signed_subject_keeps_only_the_fields_go_knows() -> None:
    ca_key = key("ca", algorithm="ECDSA", ecdsaCurve="P256")
    _, ca = tls_mocks.self_signed_cert(
        ctx(
            SELF_SIGNED_CERT,
            "ca",
            {
                "privateKeyPem": ca_key["privateKeyPem"],
                "subject": {"commonName": "CA", "country": "DE", "streetAddresses": ["b street", "a street"]},
                "isCaCertificate": True,
                "validityPeriodHours": 24,
                "allowedUses": ["cert_signing"],
            },
        )
    )
    ca_subject = load(ca["certPem"]).subject
    assert ca_subject.rfc4514_string() == "CN=CA,STREET=a street+STREET=b street,C=DE"  # one multi-valued RDN
    leaf_key = key("leaf", algorithm="ED25519")
    request = csr(
        "leaf",
        leaf_key["privateKeyPem"],
        subject={"commonName": "svc & co", "emailAddress": "ops@example.com", "organization": "devstack"},
    )
    parsed_request = x509.load_pem_x509_csr(request["certRequestPem"].encode())
    assert parsed_request.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "ops@example.com"
    assert request["keyAlgorithm"] == "ED25519"
    _, leaf = signed(
        "leaf",
        request["certRequestPem"],
        ca_key["privateKeyPem"],
        ca["certPem"],
        validityPeriodHours=1,
        allowedUses=["client_auth"],
    )
    subject = load(leaf["certPem"]).subject
    assert subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS) == []  # dropped, as Go drops it
    common_name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
    assert (common_name.value, common_name._type) == ("svc & co", _ASN1Type.UTF8String)  # '&' is not printable
    with pytest.raises(x509.ExtensionNotFound):
        extension(load(leaf["certPem"]), x509.SubjectAlternativeName)
    load(leaf["certPem"]).verify_directly_issued_by(load(ca["certPem"]))


def test_self_signed_authority_key_id_and_ed25519_key_id() -> None:
    ed_key = key("ed", algorithm="ED25519")
    inputs = {
        "privateKeyPem": ed_key["privateKeyPem"],
        "subject": {"commonName": "ed CA"},
        "isCaCertificate": True,
        "setAuthorityKeyId": True,
        "validityPeriodHours": 24,
        "allowedUses": ["cert_signing"],
    }
    _, state = tls_mocks.self_signed_cert(ctx(SELF_SIGNED_CERT, "ed", inputs))
    certificate = load(state["certPem"])
    ski = extension(certificate, x509.SubjectKeyIdentifier).value.digest
    assert extension(certificate, x509.AuthorityKeyIdentifier).value.key_identifier == ski
    raw = certificate.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert ski == hashlib.sha1(b"\x04\x20" + raw).digest()  # the provider hashes an ASN.1 OCTET STRING
    assert certificate.signature_hash_algorithm is None  # pure Ed25519
    assert state["keyAlgorithm"] == "ED25519"
    certificate.verify_directly_issued_by(certificate)


def test_write_only_private_key() -> None:
    leaf_key = key("wo", algorithm="ECDSA", ecdsaCurve="P256")
    inputs = {
        "privateKeyPemWo": leaf_key["privateKeyPem"],
        "privateKeyPemWoVersion": 1,
        "subject": {"commonName": "wo"},
    }
    _, state = tls_mocks.cert_request(ctx(CERT_REQUEST, "wo", inputs))
    assert state["privateKeyPemWo"] is None
    assert x509.load_pem_x509_csr(state["certRequestPem"].encode()).is_signature_valid


def test_a_ca_certificate_that_is_no_ca_only_warns(chain: Chain, caplog: pytest.LogCaptureFixture) -> None:
    other = key("other", algorithm="ECDSA", ecdsaCurve="P256")
    request = csr("other", other["privateKeyPem"], subject={"commonName": "other"})
    with caplog.at_level(logging.WARNING, logger="tools.engine.tls_mocks"):
        _, state = signed(
            "other",
            request["certRequestPem"],
            chain.leaf_key["privateKeyPem"],
            chain.leaf["certPem"],
            validityPeriodHours=1,
            allowedUses=["server_auth"],
        )
    assert "Potentially Invalid Certificate Authority" in caplog.text
    load(state["certPem"]).verify_directly_issued_by(load(chain.leaf["certPem"]))


# --- what the provider refuses -----------------------------------------------------------------


def test_refusals(chain: Chain) -> None:
    other_key = key("other", algorithm="ECDSA", ecdsaCurve="P384")
    request = chain.leaf_request["certRequestPem"]
    ca_key, ca_cert = chain.intermediate_key["privateKeyPem"], chain.intermediate["certPem"]
    lsc = {"validityPeriodHours": 1, "allowedUses": LEAF_USES}

    def refused(match: str, call: Any, *args: Any, **kwargs: Any) -> None:
        with pytest.raises(ValueError, match=match):
            call(*args, **kwargs)

    refused("Failed to parse certificate request PEM", signed, "x", "not a CSR", ca_key, ca_cert, **lsc)
    broken = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    refused("failed to parse certificate request", signed, "x", broken, ca_key, ca_cert, **lsc)
    refused('expected "CERTIFICATE REQUEST", got "CERTIFICATE"', signed, "x", ca_cert, ca_key, ca_cert, **lsc)
    refused('expected "CERTIFICATE", got "CERTIFICATE REQUEST"', signed, "x", request, ca_key, request, **lsc)
    refused("doesn't match parent's PublicKey", signed, "x", request, other_key["privateKeyPem"], ca_cert, **lsc)
    refused(
        "allowedUses value must be one of",
        signed,
        "x",
        request,
        ca_key,
        ca_cert,
        validityPeriodHours=1,
        allowedUses=["tls_server"],
    )
    refused("allowedUses is required", signed, "x", request, ca_key, ca_cert, validityPeriodHours=1)
    refused(
        "validityPeriodHours must be at least 0",
        signed,
        "x",
        request,
        ca_key,
        ca_cert,
        validityPeriodHours=-1,
        allowedUses=[],
    )
    refused("only CAs are allowed to specify MaxPathLen", signed, "x", request, ca_key, ca_cert, maxPathLength=2, **lsc)
    refused(
        "exactly one of caPrivateKeyPem or caPrivateKeyPemWo",
        signed,
        "x",
        request,
        ca_key,
        ca_cert,
        caPrivateKeyPemWo=ca_key,
        caPrivateKeyPemWoVersion=1,
        **lsc,
    )

    def self_signed(**inputs: Any) -> Any:
        base = {"privateKeyPem": other_key["privateKeyPem"], "validityPeriodHours": 1, "allowedUses": CA_USES}
        return tls_mocks.self_signed_cert(ctx(SELF_SIGNED_CERT, "s", {**base, **inputs}))

    refused("Invalid Certificate Subject", self_signed, isCaCertificate=True)
    refused("Invalid Certificate Subject", self_signed, isCaCertificate=True, subject={"commonName": ""})
    refused("Could not determine Authority Key Identifier", self_signed, setAuthorityKeyId=True)
    refused("Invalid IP address", self_signed, ipAddresses=["10.0.0.256"])
    refused("Invalid IP address", self_signed, ipAddresses=["fe80::1%eth0"])
    refused(
        "unable to determine parser for PEM preamble: PUBLIC KEY", self_signed, privateKeyPem=other_key["publicKeyPem"]
    )
    refused("failed to decode PEM block", self_signed, privateKeyPem="garbage")
    pkcs8_as_rsa = other_key["privateKeyPemPkcs8"].replace("PRIVATE KEY", "RSA PRIVATE KEY")
    refused("given PEM preamble 'RSA PRIVATE KEY'", self_signed, privateKeyPem=pkcs8_as_rsa)
    refused(
        "privateKeyPemWo requires privateKeyPemWoVersion",
        self_signed,
        privateKeyPem=None,
        privateKeyPemWo=other_key["privateKeyPem"],
    )
    refused("exactly one of privateKeyPem or privateKeyPemWo", self_signed, privateKeyPem=None)

    refused("Invalid Key Algorithm", key, "k", algorithm="DSA")
    refused("ecdsaCurve must be one of", key, "k", algorithm="ECDSA", ecdsaCurve="P192")
    refused("Unable to generate Key from configuration", key, "k", algorithm="RSA", rsaBits=512)
    secp256k1 = ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    refused("unsupported elliptic curve", self_signed, privateKeyPem=secp256k1.decode())


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"validityPeriodHours": "one"}, "validityPeriodHours must be a whole number"),
        ({"validityPeriodHours": True}, "validityPeriodHours must be a whole number"),
        ({"validityPeriodHours": None}, "validityPeriodHours is required"),
        ({"allowedUses": "cert_signing"}, "allowedUses must be a list of strings"),
        ({"ipAddresses": [""]}, "ipAddresses values must not be empty strings"),
        ({"privateKeyPem": 5}, "privateKeyPem must be a string"),
        ({"dnsNames": ["bücher.test"]}, "cannot be encoded as an IA5String"),
        ({"uris": ["https://a.test/\x01"]}, "invalid control character in URL"),
        ({"uris": [":no-scheme"]}, "missing protocol scheme"),
        ({"uris": ["https://bücher.test/"]}, "cannot be encoded as an IA5String"),
        ({"subject": "CN=x"}, "subject must be an object"),
    ],
)
def test_a_self_signed_certificate_refuses_bad_inputs(inputs: dict[str, Any], match: str) -> None:
    base = {
        "privateKeyPem": key("s", algorithm="ECDSA", ecdsaCurve="P256")["privateKeyPem"],
        "validityPeriodHours": 1,
        "allowedUses": CA_USES,
    }
    with pytest.raises(ValueError, match=match):
        tls_mocks.self_signed_cert(ctx(SELF_SIGNED_CERT, "s", {**base, **inputs}))


def test_sans_are_written_as_go_writes_them() -> None:
    """An IPv4-mapped IPv6 address is written in its 4-byte form; a URI's scheme in lower case."""
    inputs = {
        "privateKeyPem": key("s", algorithm="ECDSA", ecdsaCurve="P256")["privateKeyPem"],
        "validityPeriodHours": 1,
        "allowedUses": CA_USES,
        "subject": {"commonName": "s"},
        "ipAddresses": ["::ffff:10.0.0.1"],
        "uris": ["HTTPS://a.test/x"],
    }
    _, state = tls_mocks.self_signed_cert(ctx(SELF_SIGNED_CERT, "s", inputs))
    sans = extension(load(state["certPem"]), x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["https://a.test/x"]


# --- through the engine, with the real SDK -----------------------------------------------------

PROGRAM = textwrap.dedent(
    """
    import pulumi
    import pulumi_tls as tls

    root_key = tls.PrivateKey("root", algorithm="ECDSA", ecdsa_curve="P384")
    root = tls.SelfSignedCert(
        "root",
        private_key_pem=root_key.private_key_pem,
        subject=tls.SelfSignedCertSubjectArgs(common_name="Root", organization="devstack", street_addresses=["x"]),
        is_ca_certificate=True,
        validity_period_hours=48,
        allowed_uses=["cert_signing", "crl_signing"],
    )
    leaf_key = tls.PrivateKey("leaf", algorithm="ECDSA", ecdsa_curve="P256")
    request = tls.CertRequest(
        "leaf",
        private_key_pem=leaf_key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name="leaf", organizational_unit="ou"),
        dns_names=["leaf"],
        ip_addresses=["10.1.2.3"],
    )
    leaf = tls.LocallySignedCert(
        "leaf",
        cert_request_pem=request.cert_request_pem,
        ca_private_key_pem=root_key.private_key_pem,
        ca_cert_pem=root.cert_pem,
        validity_period_hours=24,
        early_renewal_hours=2,
        allowed_uses=["server_auth"],
    )
    pulumi.export("leaf", leaf.cert_pem)
    """
)


def test_through_the_engine_with_the_sdk(tmp_path: Path) -> None:
    from tools.engine import Secret, run_program, unwrap

    main = tmp_path / "program.py"
    main.write_text(PROGRAM)
    run = run_program({}, main=main)
    root_key = run.one(PRIVATE_KEY, "root")
    assert isinstance(root_key.outputs["privateKeyPem"], Secret)
    leaf_record = run.one(LOCALLY_SIGNED_CERT, "leaf")
    root = load(unwrap(run.one(SELF_SIGNED_CERT, "root").outputs["certPem"]))
    leaf = load(unwrap(leaf_record.outputs["certPem"]))
    assert root.subject.rfc4514_string() == "CN=Root,O=devstack,STREET=x"
    assert leaf.subject.rfc4514_string() == "CN=leaf,OU=ou"
    assert extension(leaf, x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3")
    ]
    leaf.verify_directly_issued_by(root)
    assert leaf_record.id == str(leaf.serial_number)
    assert unwrap(run.outputs["leaf"]) == unwrap(leaf_record.outputs["certPem"])
    # a second run over the same state keeps everything; a fresh state re-derives the same keys
    again = run_program({}, main=main, state=run.state)
    assert unwrap(again.one(LOCALLY_SIGNED_CERT, "leaf").outputs["certPem"]) == unwrap(leaf_record.outputs["certPem"])
    fresh = run_program({}, main=main)
    assert unwrap(fresh.one(PRIVATE_KEY, "root").outputs["privateKeyPem"]) == unwrap(root_key.outputs["privateKeyPem"])


# --- the openssl CLI ---------------------------------------------------------------------------


@pytest.mark.real  # the tool's own checker
@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
def test_openssl_verifies_the_chain(chain: Chain, tmp_path: Path) -> None:
    files = {"root.pem": chain.root["certPem"], "intermediate.pem": chain.intermediate["certPem"]}
    files |= {"leaf.pem": chain.leaf["certPem"], "leaf.csr": chain.leaf_request["certRequestPem"]}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    attime = str(int((T0 + timedelta(hours=1)).timestamp()))
    base = ["openssl", "verify", "-attime", attime, "-CAfile", "root.pem", "-untrusted", "intermediate.pem"]
    for extra in ([], ["-x509_strict"], ["-purpose", "sslserver"], ["-purpose", "sslclient"]):
        result = subprocess.run([*base, *extra, "leaf.pem"], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert result.returncode == 0, (extra, result.stdout, result.stderr)
        assert "leaf.pem: OK" in result.stdout
    # the leaf does not verify without its intermediate, nor once expired
    alone = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "leaf.pem"], cwd=tmp_path, capture_output=True, check=False
    )
    assert alone.returncode != 0
    late = str(int((T0 + timedelta(hours=LEAF_HOURS + 1)).timestamp()))
    expired = subprocess.run(
        [*base[:2], "-attime", late, *base[4:], "leaf.pem"], cwd=tmp_path, capture_output=True, check=False
    )
    assert expired.returncode != 0
    request = subprocess.run(
        ["openssl", "req", "-in", "leaf.csr", "-noout", "-verify"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert request.returncode == 0, request.stderr
    # the private key matches the certificate
    (tmp_path / "leaf.key").write_text(chain.leaf_key["privateKeyPem"])
    from_key = subprocess.run(
        ["openssl", "pkey", "-in", "leaf.key", "-pubout"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    from_cert = subprocess.run(
        ["openssl", "x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert from_key.stdout == from_cert.stdout


def test_sha_hashes_helper_is_sane() -> None:
    assert isinstance(tls_mocks._signature_hash(ec.generate_private_key(ec.SECP521R1())), hashes.SHA512)
