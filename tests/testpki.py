"""Real test certificates made with `cryptography`: a root, an intermediate, a Vault leaf for
vault, localhost and 127.0.0.1 (served with the intermediate), a leaf for "vault" alone and an
unrelated root with the same name."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path  # the root the wrapper is told to trust
    other_ca: Path  # an unrelated root
    chain: Path  # leaf (vault, localhost, 127.0.0.1), then the intermediate
    key: Path
    vault_only_chain: Path  # a leaf for "vault" alone, then the intermediate
    vault_only_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(names or []), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(directory: Path) -> Pki:
    """A root, an intermediate, leaves for Vault and an unrelated root, as files in directory."""
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("root", "inter", "leaf", "only", "other")}
    root = _certificate("devstack test root", keys["root"], None, keys["root"], ca=True)
    inter = _certificate("devstack test intermediate", keys["inter"], root, keys["root"], ca=True)
    everywhere: list[x509.GeneralName] = [
        x509.DNSName("vault"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    leaf = _certificate("vault", keys["leaf"], inter, keys["inter"], ca=False, names=everywhere)
    only = _certificate("vault", keys["only"], inter, keys["inter"], ca=False, names=[x509.DNSName("vault")])
    other = _certificate("devstack test root", keys["other"], None, keys["other"], ca=True)  # same name, other key
    files = {
        "ca.crt": _pem(root),
        "other-ca.crt": _pem(other),
        "server.crt": _pem(leaf, inter),
        "server.key": _key_pem(keys["leaf"]),
        "vault-only.crt": _pem(only, inter),
        "vault-only.key": _key_pem(keys["only"]),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return Pki(*(directory / name for name in files))
