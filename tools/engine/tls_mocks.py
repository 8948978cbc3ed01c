"""pulumi-tls 5.6.2 mocks that issue REAL keys, certificate requests and certificates.

pulumi-tls 5.6.2 bridges hashicorp/terraform-provider-tls (d72d90e1, the commit
tools/engine/provider_rules.py cites), which builds Go crypto/x509 templates. These handlers build the
same certificates with `cryptography`, including the quirks that Go and the provider add:

- `maxPathLength = 0` puts NO pathLenConstraint in the certificate. The provider sets MaxPathLen
  but never MaxPathLenZero, and Go reads MaxPathLen 0 without MaxPathLenZero as "not set". Only a
  value of 1 or more shows up. A non-CA certificate with a value of 1 or more is refused.
- Basic constraints are always present and critical. A CA certificate always gets a subject key
  identifier, whether or not setSubjectKeyId is set. A locally signed certificate gets an authority
  key identifier when its CA certificate has a subject key identifier. A self-signed one gets it
  only with setAuthorityKeyId. For ED25519 the provider hashes the key wrapped in an OCTET
  STRING, so its SKI is not the RFC 5280 one.
- A locally signed certificate takes only the subject, DNS names, IP addresses and URIs from the
  CSR. Go re-encodes the subject from the fields it knows (C, ST, L, STREET, postalCode, O, OU, CN,
  serialNumber, in that order), so an emailAddress or other attribute in the CSR's subject is
  dropped, and so are the CSR's e-mail SANs and requested extensions. The CSR's signature is
  not checked (Go's ParseCertificateRequest does not check it either).
- Signatures: SHA-256 with RSA (PKCS#1 v1.5), ECDSA with SHA-256 for P224/P256 keys, SHA-384 for
  P384 and SHA-512 for P521, and pure Ed25519. The signing key picks the algorithm: for a locally
  signed certificate that is the CA key.
- readyForRenewal is true at creation only if validityPeriodHours is 0 or earlyRenewalHours >=
  validityPeriodHours (the provider's plan modifier). Later the provider's Read and ModifyPlan
  set it once `now >= validityEndTime - earlyRenewalHours`; `ready_for_renewal()` and
  `refresh()` do the same for stored outputs.
- Like the provider, the handlers refuse what it refuses (raising ValueError): a PEM that does
  not decode, or has the wrong type or a key in another format than its PEM type says, an
  unsupported key or curve, a CA key that does not match the CA certificate, an unknown
  allowedUses value, a CA without a subject, an invalid IP address, and so on.
  A CA certificate that is not a CA only gets a warning (logged), as in the provider.

Determinism: keys derive from `ctx.seed()`, so the same URN and generation give the same key,
and a replacement (a new generation) gives a new one. ECDSA private values are seed mod the
curve order. ED25519 keys use the seed as the key. `cryptography` cannot seed RSA key
generation, so an RSA key is generated once per (seed, rsaBits) and kept in the module-level
`_RSA_KEYS` cache. It is the same within a process, but not across processes. Serial numbers
(the certificate ids) come from the seed, ECDSA signatures are RFC 6979 deterministic, and the
OpenSSH check bytes come from the seed. With a fixed clock every output is reproducible.

Clock: every "now" goes through `now()`. `set_clock(moment)` pins it (tests), and
`set_clock(None)` releases it. When it is not pinned, now() is devstack.clock.now(), which
honours DEVSTACK_NOW, so certificates follow the same clock as the program.

Registration: tools.engine.mocks merges HANDLERS into its own table; this module knows nothing
of it (it imports only tools.engine.context), so the imports run one way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, ObjectIdentifier

from tools.engine.context import MockContext

PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert"
CERT_REQUEST = "tls:index/certRequest:CertRequest"
LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Clock
# ---------------------------------------------------------------------------------------------


@dataclass
class _ClockOverride:
    moment: datetime | None = None


_CLOCK = _ClockOverride()


def set_clock(moment: datetime | None) -> None:
    """Pin now() to `moment` (a naive time is taken as UTC), or release it with None."""
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _CLOCK.moment = moment


def pinned_clock() -> datetime | None:
    """The moment now() is pinned to, if any: an input of every run, as DEVSTACK_NOW is."""
    return _CLOCK.moment


def now() -> datetime:
    """The mocks' "now": the pinned time, else the program's clock (which honours DEVSTACK_NOW)."""
    if _CLOCK.moment is not None:
        return _CLOCK.moment
    from devstack.clock import now as program_now

    return program_now()


def _rfc3339(moment: datetime) -> str:
    # Go's Time.MarshalText (RFC 3339 with the fraction, trailing zeros dropped). It is always
    # written in UTC here; the provider writes the offset of its host's zone.
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Encodings: PEM, Go's hashForState, a peek into DER
# ---------------------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(r"-----BEGIN ([^\n-]+)-----[ \t]*\r?\n(.*?)-----END \1-----", re.DOTALL)


def _pem_decode(text: str) -> tuple[str, bytes] | None:
    """The first well-formed PEM block, anywhere in the text (as Go's pem.Decode finds it)."""
    for match in _PEM_BLOCK.finditer(text):
        body = "".join(line for line in match.group(2).splitlines() if ":" not in line)
        try:
            return match.group(1), base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _pem_encode(kind: str, der: bytes) -> str:
    # Go's pem.EncodeToMemory: 64-character lines and a final newline.
    text = base64.b64encode(der).decode()
    lines = "".join(text[i : i + 64] + "\n" for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{lines}-----END {kind}-----\n"


_GO_ASCII_SPACE = frozenset(b"\t\n\v\f\r ")
_GO_UNICODE_SPACE = frozenset({0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000})


def _space_rune(data: bytes) -> bool:
    """Whether `data` is exactly one UTF-8 encoded rune that Go's unicode.IsSpace accepts."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(text) == 1 and ord(text) in _GO_UNICODE_SPACE


def _go_trim_space(data: bytes) -> bytes:
    """Go's strings.TrimSpace on a byte string (the provider hashes DER bytes with it)."""
    start, end = 0, len(data)
    while start < end:
        byte = data[start]
        if byte < 0x80:
            if byte not in _GO_ASCII_SPACE:
                break
            start += 1
            continue
        width = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        if not _space_rune(data[start : start + width]):
            break
        start += width
    while end > start:
        byte = data[end - 1]
        if byte < 0x80:
            if byte not in _GO_ASCII_SPACE:
                break
            end -= 1
            continue
        first = end - 1
        while first > max(start, end - 4) and data[first] & 0xC0 == 0x80:
            first -= 1
        if not _space_rune(data[first:end]):
            break
        end = first
    return data[start:end]


def _hash_for_state(data: bytes) -> str:
    """The provider's hashForState: hex SHA-1 of the trimmed value ("" for an empty one)."""
    if not data:
        return ""
    return hashlib.sha1(_go_trim_space(data), usedforsecurity=False).hexdigest()


def _der_length(der: bytes, pos: int) -> tuple[int, int]:
    """(content length, content start) for the length octets at `pos`."""
    first = der[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    return int.from_bytes(der[pos + 1 : pos + 1 + count]), pos + 1 + count


def _der_second_tag(der: bytes) -> int | None:
    """Tag of the second element in the outer SEQUENCE: tells PKCS#1 (INTEGER), SEC 1 (OCTET
    STRING) and PKCS#8 (SEQUENCE) private keys apart."""
    try:
        if der[0] != 0x30:
            return None
        _, first_element = _der_length(der, 1)
        length, content = _der_length(der, first_element + 1)
        return der[content + length]
    except IndexError:
        return None


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

ALGORITHMS = ("RSA", "ECDSA", "ED25519")
DEFAULT_RSA_BITS = 2048
DEFAULT_ECDSA_CURVE = "P224"  # the provider's default, weak as it is

# Curve name -> (curve, group order). The orders are the published NIST values.
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P224": (ec.SECP224R1(), 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D),
    "P256": (ec.SECP256R1(), 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "P384": (
        ec.SECP384R1(),
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    ),
    "P521": (
        ec.SECP521R1(),
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
    ),
}
_CURVE_NAMES = {curve.name: name for name, (curve, _) in _CURVES.items()}

# (seed, rsaBits) -> key. See the module docstring: RSA generation cannot be seeded.
_RSA_KEYS: dict[tuple[bytes, int], rsa.RSAPrivateKey] = {}


def _refuse(ctx: MockContext, summary: str, detail: str) -> ValueError:
    return ValueError(f"{ctx.type} ({ctx.name}): {summary}: {detail}")


def _key_algorithm(key: object) -> str:
    """The provider's privateKeyToAlgorithm, and Go's limits: only the four NIST curves."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_NAMES:
            raise ValueError(f"x509: unsupported elliptic curve {key.curve.name}")
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ED25519"
    raise ValueError(f"unsupported key type: {type(key).__name__}")


_PRIVATE_KEY_PREAMBLES = {"RSA PRIVATE KEY": 0x02, "EC PRIVATE KEY": 0x04, "PRIVATE KEY": 0x30}
_OTHER_PREAMBLES = frozenset({"PUBLIC KEY", "CERTIFICATE", "CERTIFICATE REQUEST"})


def parse_private_key(text: str) -> tuple[PrivateKey, str]:
    """The provider's parsePrivateKeyPEM: (key, "RSA" | "ECDSA" | "ED25519"), else ValueError."""
    block = _pem_decode(text)
    if block is None:
        raise ValueError("failed to decode PEM block")
    kind, der = block
    if kind not in _PRIVATE_KEY_PREAMBLES:
        if kind in _OTHER_PREAMBLES:
            raise ValueError(f"unable to determine parser for PEM preamble: {kind}")
        raise ValueError(f"unsupported PEM preamble/type: {kind}")
    if _der_second_tag(der) != _PRIVATE_KEY_PREAMBLES[kind]:
        raise ValueError(f"failed to parse private key given PEM preamble '{kind}': not in that format")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(f"failed to parse private key given PEM preamble '{kind}': {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"failed to parse private key given PEM preamble '{kind}': unsupported key type")
    algorithm = _key_algorithm(key)
    expected = {"RSA PRIVATE KEY": "RSA", "EC PRIVATE KEY": "ECDSA"}.get(kind, algorithm)
    if algorithm != expected:
        raise ValueError(f"failed to parse private key given PEM preamble '{kind}': found a {algorithm} key")
    return key, algorithm


def _generate_key(ctx: MockContext, algorithm: str, rsa_bits: int, curve: str) -> PrivateKey:
    if algorithm == "RSA":
        cache_key = (ctx.seed("rsa"), rsa_bits)
        cached = _RSA_KEYS.get(cache_key)
        if cached is None:
            try:
                generated = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            except ValueError as error:
                raise _refuse(ctx, "Unable to generate Key from configuration", str(error)) from None
            cached = _RSA_KEYS.setdefault(cache_key, generated)
        return cached
    if algorithm == "ECDSA":
        elliptic_curve, order = _CURVES[curve]
        stream = b"".join(ctx.seed("ecdsa", curve, str(i)) for i in range(3))  # 768 bits: > P521 + 64
        return ec.derive_private_key(int.from_bytes(stream) % (order - 1) + 1, elliptic_curve)
    return ed25519.Ed25519PrivateKey.from_private_bytes(ctx.seed("ed25519"))


def _provider_pem(key: PrivateKey) -> str:
    """private_key_pem as the provider writes it: PKCS#1 for RSA, SEC 1 for ECDSA, PKCS#8 for ED25519."""
    if isinstance(key, rsa.RSAPrivateKey):
        kind, fmt = "RSA PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        kind, fmt = "EC PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL
    else:
        kind, fmt = "PRIVATE KEY", serialization.PrivateFormat.PKCS8
    return _pem_encode(kind, key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption()))


def _pkcs8_pem(key: PrivateKey) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _pem_encode("PRIVATE KEY", der)


def _ssh_string_end(blob: bytes | bytearray, pos: int) -> int:
    return pos + 4 + int.from_bytes(blob[pos : pos + 4])


def _openssh_private_key(key: PrivateKey, check: int) -> str:
    """OpenSSH's own format. The check bytes are random in both Go and `cryptography`; here they
    come from the seed, so the output is reproducible."""
    text = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    block = _pem_decode(text)
    if block is None:  # pragma: no cover - cryptography always writes one block
        raise ValueError("cryptography wrote no OpenSSH PEM block")
    blob = bytearray(block[1])
    pos = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher name, KDF name, KDF options
        pos = _ssh_string_end(blob, pos)
    pos = _ssh_string_end(blob, pos + 4)  # skip the key count, then the public key
    pos += 4  # length of the private section, which starts with the two check words
    blob[pos : pos + 8] = struct.pack(">II", check, check)
    return _pem_encode("OPENSSH PRIVATE KEY", bytes(blob))


def _openssh_public(public_key: PublicKey) -> tuple[str, str, str]:
    """(authorized_keys line, MD5 fingerprint, SHA256 fingerprint); empty for P224, which Go's
    x/crypto/ssh does not support."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp224r1":
        return "", "", ""
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    wire = base64.b64decode(line.split()[1])
    md5 = ":".join(f"{b:02x}" for b in hashlib.md5(wire, usedforsecurity=False).digest())
    sha256 = "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")
    return line + "\n", md5, sha256


def _subject_public_key_info(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _subject_key_id(public_key: PublicKey) -> bytes:
    """The provider's generateSubjectKeyID: SHA-1 of the PKCS#1 key (RSA), of the uncompressed
    point (ECDSA), or of the key as an ASN.1 OCTET STRING (ED25519, unlike RFC 5280)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        data = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        data = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        data = bytes([0x04, len(raw)]) + raw
    return hashlib.sha1(data, usedforsecurity=False).digest()


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """Go's signingParamsForKey default for the signing key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name == "secp384r1":
            return hashes.SHA384()
        if key.curve.name == "secp521r1":
            return hashes.SHA512()
    return hashes.SHA256()


def _ecdsa_deterministic(key: PrivateKey) -> bool | None:
    return True if isinstance(key, ec.EllipticCurvePrivateKey) else None


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _optional_int(ctx: MockContext, name: str, default: int | None, minimum: int) -> int | None:
    value = ctx.inputs.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _refuse(ctx, "Invalid Attribute Value", f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise _refuse(ctx, "Invalid Attribute Value", f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def _required_int(ctx: MockContext, name: str, minimum: int) -> int:
    value = _optional_int(ctx, name, None, minimum)
    if value is None:
        raise _refuse(ctx, "Missing required argument", f"{name} is required")
    return value


def _flag(ctx: MockContext, name: str) -> bool:
    return bool(ctx.inputs.get(name) or False)


def _strings(ctx: MockContext, name: str, non_empty: bool = False) -> list[str]:
    values = ctx.inputs.get(name) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _refuse(ctx, "Invalid Attribute Value", f"{name} must be a list of strings, got {values!r}")
    if non_empty and any(not v for v in values):
        raise _refuse(ctx, "Invalid Attribute Value", f"{name} values must not be empty strings")
    return list(values)


def _required_string(ctx: MockContext, name: str) -> str:
    value = ctx.inputs.get(name)
    if not isinstance(value, str):
        raise _refuse(ctx, "Missing required argument", f"{name} is required")
    return value


def _key_input(ctx: MockContext, name: str) -> str:
    """`name` or its write-only twin `nameWo` (which needs `nameWoVersion`): exactly one of them."""
    plain, write_only = ctx.inputs.get(name), ctx.inputs.get(f"{name}Wo")
    if (plain is None) == (write_only is None):
        raise _refuse(ctx, "Invalid Attribute Combination", f"exactly one of {name} or {name}Wo must be set")
    if write_only is not None and ctx.inputs.get(f"{name}WoVersion") is None:
        raise _refuse(ctx, "Invalid Attribute Combination", f"{name}Wo requires {name}WoVersion")
    value = plain if plain is not None else write_only
    if not isinstance(value, str):
        raise _refuse(ctx, "Invalid Attribute Value", f"{name} must be a string")
    return value


def _parse_ip(text: str) -> IPAddress:
    """Go's net.ParseIP (no zone), and the 4-byte form x509 writes for IPv4-mapped addresses."""
    if "%" in text:
        raise ValueError(text)
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _parse_uri(text: str) -> str:
    """Close to Go's url.Parse + String for ordinary URIs: no control characters, no empty
    scheme, scheme in lower case; x509 then needs ASCII (IA5String)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("net/url: invalid control character in URL")
    if text.startswith(":"):
        raise ValueError("missing protocol scheme")
    if not text.isascii():
        raise ValueError("x509: cannot be encoded as an IA5String")
    return _URI_SCHEME.sub(lambda m: m.group(1).lower() + ":", text, count=1)


@dataclass(frozen=True)
class _Sans:
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()
    uris: tuple[str, ...] = ()

    def extension(self) -> x509.SubjectAlternativeName | None:
        # Go's marshalSANs order: DNS names, (e-mails), IP addresses, URIs.
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in self.dns_names]
        names += [x509.IPAddress(a) for a in self.ip_addresses]
        names += [x509.UniformResourceIdentifier(u) for u in self.uris]
        return x509.SubjectAlternativeName(names) if names else None


def _sans_from_inputs(ctx: MockContext) -> _Sans:
    dns_names = _strings(ctx, "dnsNames")
    for name in dns_names:
        if not name.isascii():
            raise _refuse(ctx, "Failed to create certificate", f"x509: {name!r} cannot be encoded as an IA5String")
    addresses: list[IPAddress] = []
    for text in _strings(ctx, "ipAddresses", non_empty=True):
        try:
            addresses.append(_parse_ip(text))
        except ValueError:
            raise _refuse(ctx, "Invalid IP address", f"Failed to parse {text!r}") from None
    uris: list[str] = []
    for text in _strings(ctx, "uris", non_empty=True):
        try:
            uris.append(_parse_uri(text))
        except ValueError as error:
            raise _refuse(ctx, "Invalid URI", f"Failed to parse {text!r}: {error}") from None
    return _Sans(tuple(dns_names), tuple(addresses), tuple(uris))


# ---------------------------------------------------------------------------------------------
# Subjects: Go's pkix.Name
# ---------------------------------------------------------------------------------------------

# Go's pkix.Name.ToRDNSequence order for the multi-valued fields (each field is one RDN).
_LIST_FIELDS: tuple[tuple[str, ObjectIdentifier], ...] = (
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("street", NameOID.STREET_ADDRESS),
    ("postal_code", NameOID.POSTAL_CODE),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
)
_FIELD_BY_OID = {oid: name for name, oid in _LIST_FIELDS}
_GO_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


@dataclass
class _GoName:
    country: list[str] = field(default_factory=list)
    province: list[str] = field(default_factory=list)
    locality: list[str] = field(default_factory=list)
    street: list[str] = field(default_factory=list)
    postal_code: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    organizational_unit: list[str] = field(default_factory=list)
    common_name: str = ""
    serial_number: str = ""
    email: str | None = None
    parsed_attributes: int = 0  # Go's Name.Names: what a parsed subject held, known or not

    def is_empty(self) -> bool:
        """Go's cmp.Equal(name, pkix.Name{}), which the provider checks for a CA."""
        lists = any(getattr(self, name) for name, _ in _LIST_FIELDS)
        return not (lists or self.common_name or self.serial_number or self.email is not None) and (
            self.parsed_attributes == 0
        )

    def to_x509(self) -> x509.Name:
        rdns = [
            x509.RelativeDistinguishedName([_attribute(oid, value) for value in getattr(self, name)])
            for name, oid in _LIST_FIELDS
            if getattr(self, name)
        ]
        if self.common_name:
            rdns.append(x509.RelativeDistinguishedName([_attribute(NameOID.COMMON_NAME, self.common_name)]))
        if self.serial_number:
            rdns.append(x509.RelativeDistinguishedName([_attribute(NameOID.SERIAL_NUMBER, self.serial_number)]))
        if self.email is not None:
            email = x509.NameAttribute(NameOID.EMAIL_ADDRESS, self.email, _type=_ASN1Type.IA5String, _validate=False)
            rdns.append(x509.RelativeDistinguishedName([email]))
        return x509.Name(rdns)


def _attribute(oid: ObjectIdentifier, value: str) -> x509.NameAttribute:
    # Go's asn1 writes a PrintableString when it can, else a UTF8String; it checks no lengths.
    string_type = _ASN1Type.PrintableString if set(value) <= _GO_PRINTABLE else _ASN1Type.UTF8String
    return x509.NameAttribute(oid, value, _type=string_type, _validate=False)


def _name_from_inputs(ctx: MockContext) -> _GoName:
    """The provider's createSubjectDistinguishedNames."""
    subject = ctx.inputs.get("subject")
    if subject is None:
        return _GoName()
    if not isinstance(subject, Mapping):
        raise _refuse(ctx, "Invalid Attribute Value", f"subject must be an object, got {subject!r}")

    def one(key: str) -> list[str]:
        value = subject.get(key)
        return [] if value is None else [str(value)]

    return _GoName(
        country=one("country"),
        province=one("province"),
        locality=one("locality"),
        street=[str(s) for s in subject.get("streetAddresses") or []],
        postal_code=one("postalCode"),
        organization=one("organization"),
        organizational_unit=one("organizationalUnit"),
        common_name=str(subject.get("commonName") or ""),
        serial_number=str(subject.get("serialNumber") or ""),
        email=None if subject.get("emailAddress") is None else str(subject["emailAddress"]),
    )


def _name_from_parsed(name: x509.Name) -> _GoName:
    """Go's pkix.Name.FillFromRDNSequence: only the fields it knows survive a re-encoding."""
    result = _GoName()
    for attribute in name:
        result.parsed_attributes += 1
        value = attribute.value
        if not isinstance(value, str):
            continue
        if attribute.oid == NameOID.COMMON_NAME:
            result.common_name = value
        elif attribute.oid == NameOID.SERIAL_NUMBER:
            result.serial_number = value
        elif attribute.oid in _FIELD_BY_OID:
            getattr(result, _FIELD_BY_OID[attribute.oid]).append(value)
    return result


# ---------------------------------------------------------------------------------------------
# Certificates: the provider's createCertificate + Go's x509.CreateCertificate
# ---------------------------------------------------------------------------------------------

KEY_USAGE_BITS: dict[str, int] = {
    "digital_signature": 0,
    "content_commitment": 1,
    "key_encipherment": 2,
    "data_encipherment": 3,
    "key_agreement": 4,
    "cert_signing": 5,
    "crl_signing": 6,
    "encipher_only": 7,
    "decipher_only": 8,
}
EXTENDED_KEY_USAGES: dict[str, ObjectIdentifier] = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}
SUPPORTED_USES = tuple(sorted([*KEY_USAGE_BITS, *EXTENDED_KEY_USAGES]))


def _key_usage_value(bits: int) -> bytes:
    """Go's marshalKeyUsage: the DER BIT STRING, bit i of KeyUsage as bit i (MSB first). Written
    raw because Go also accepts encipher_only/decipher_only without key_agreement."""
    content = bytearray(2)
    for bit in range(9):
        if bits >> bit & 1:
            content[bit // 8] |= 0x80 >> (bit % 8)
    size = 2 if content[1] else 1
    unused = 8 * size - bits.bit_length()  # the bits after the last one set
    return bytes([0x03, size + 1, unused, *content[:size]])


def _allowed_uses(ctx: MockContext) -> tuple[int, list[ObjectIdentifier]]:
    if ctx.inputs.get("allowedUses") is None:
        raise _refuse(ctx, "Missing required argument", "allowedUses is required")
    bits, extended = 0, []
    for use in _strings(ctx, "allowedUses"):
        if use in KEY_USAGE_BITS:
            bits |= 1 << KEY_USAGE_BITS[use]
        elif use in EXTENDED_KEY_USAGES:
            extended.append(EXTENDED_KEY_USAGES[use])  # in the given order, duplicates kept, as Go does
        else:
            raise _refuse(
                ctx, "Invalid Attribute Value Match", f"allowedUses value must be one of {SUPPORTED_USES}, got {use!r}"
            )
    return bits, extended


def _subject_key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@dataclass(frozen=True)
class _Template:
    """The x509 template the provider's createCertificate fills in."""

    subject: x509.Name
    sans: _Sans
    public_key: PublicKey
    start: datetime
    validity_hours: int
    early_hours: int
    max_path: int | None  # the input; Go only writes a value >= 1
    is_ca: bool
    key_usage: int
    extended_usages: list[ObjectIdentifier]
    subject_key_id: bytes | None
    authority_key_id: bytes | None  # self-signed with setAuthorityKeyId only

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.validity_hours)

    @property
    def path_length(self) -> int | None:
        # The provider sets MaxPathLen for >= 0 but never MaxPathLenZero, so Go leaves 0 out.
        return self.max_path if self.max_path is not None and self.max_path > 0 else None


@dataclass(frozen=True)
class _Issuer:
    """The parent of a locally signed certificate (None stands for self-signed)."""

    certificate: x509.Certificate
    key: PrivateKey


def _template(
    ctx: MockContext, subject: _GoName, sans: _Sans, public_key: PublicKey, *, self_signed: bool
) -> _Template:
    """The provider's createCertificate, up to the call to x509.CreateCertificate."""
    validity_hours = _required_int(ctx, "validityPeriodHours", 0)
    early_hours = _optional_int(ctx, "earlyRenewalHours", 0, 0) or 0
    max_path = _optional_int(ctx, "maxPathLength", None, -1)
    key_usage, extended_usages = _allowed_uses(ctx)
    is_ca = _flag(ctx, "isCaCertificate")
    subject_key_id = None
    if is_ca:
        if subject.is_empty():
            raise _refuse(
                ctx,
                "Invalid Certificate Subject",
                "Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
            )
        subject_key_id = _subject_key_id(public_key)
    if _flag(ctx, "setSubjectKeyId"):
        subject_key_id = _subject_key_id(public_key)
    authority_key_id = None
    if self_signed and _flag(ctx, "setAuthorityKeyId"):
        if subject_key_id is None:  # the parent is the certificate itself
            raise _refuse(ctx, "Invalid Certificate Authority", "Could not determine Authority Key Identifier")
        authority_key_id = subject_key_id
    return _Template(
        subject=subject.to_x509(),
        sans=sans,
        public_key=public_key,
        start=now().astimezone(UTC),
        validity_hours=validity_hours,
        early_hours=early_hours,
        max_path=max_path,
        is_ca=is_ca,
        key_usage=key_usage,
        extended_usages=extended_usages,
        subject_key_id=subject_key_id,
        authority_key_id=authority_key_id,
    )


def _extensions(template: _Template, authority_key_id: bytes | None) -> list[tuple[x509.ExtensionType, bool]]:
    """(extension, critical) in Go's buildCertExtensions order."""
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if template.key_usage:
        extensions.append(
            (x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, _key_usage_value(template.key_usage)), True)
        )
    if template.extended_usages:
        extensions.append((x509.ExtendedKeyUsage(template.extended_usages), False))
    extensions.append((x509.BasicConstraints(ca=template.is_ca, path_length=template.path_length), True))
    if template.subject_key_id:
        extensions.append((x509.SubjectKeyIdentifier(template.subject_key_id), False))
    if authority_key_id:
        extensions.append((x509.AuthorityKeyIdentifier(authority_key_id, None, None), False))
    san = template.sans.extension()
    if san is not None:
        extensions.append((san, len(template.subject) == 0))  # RFC 5280: critical if no subject
    return extensions


def _issue(
    ctx: MockContext, template: _Template, *, signer: PrivateKey, issuer: _Issuer | None
) -> tuple[str, dict[str, Any]]:
    """Go's x509.CreateCertificate with that template: (id, computed outputs)."""
    if not template.is_ca and template.path_length is not None:
        raise _refuse(ctx, "Failed to create certificate", "x509: only CAs are allowed to specify MaxPathLen")
    issuer_name, authority_key_id = template.subject, template.authority_key_id
    if issuer is not None:
        issuer_name = issuer.certificate.subject
        try:
            ca_spki = issuer.certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (ValueError, UnsupportedAlgorithm):
            ca_spki = None  # Go leaves a key it cannot parse nil and skips the check
        if ca_spki is not None and ca_spki != _subject_public_key_info(issuer.key.public_key()):
            raise _refuse(
                ctx, "Failed to create certificate", "x509: provided PrivateKey doesn't match parent's PublicKey"
            )
        parent_key_id = _subject_key_identifier(issuer.certificate)
        if parent_key_id and issuer_name.public_bytes() != template.subject.public_bytes():
            authority_key_id = parent_key_id

    serial = int.from_bytes(ctx.seed("serial")[:16]) or 1  # the provider draws 128 random bits
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(issuer_name)
        .public_key(template.public_key)
        .serial_number(serial)
        .not_valid_before(template.start.replace(microsecond=0))
        .not_valid_after(template.end.replace(microsecond=0))
    )
    for extension, critical in _extensions(template, authority_key_id):
        builder = builder.add_extension(extension, critical=critical)
    try:
        certificate = builder.sign(signer, _signature_hash(signer), ecdsa_deterministic=_ecdsa_deterministic(signer))
    except (ValueError, TypeError) as error:
        raise _refuse(ctx, "Failed to create certificate", str(error)) from None

    return str(serial), {
        "certPem": _pem_encode("CERTIFICATE", certificate.public_bytes(serialization.Encoding.DER)),
        "validityStartTime": _rfc3339(template.start),
        "validityEndTime": _rfc3339(template.end),
        # The provider's ReadyForRenewal plan modifier, at creation.
        "readyForRenewal": template.validity_hours == 0 or template.early_hours >= template.validity_hours,
        "earlyRenewalHours": template.early_hours,
        "isCaCertificate": template.is_ca,
        "maxPathLength": template.max_path,
        "setSubjectKeyId": _flag(ctx, "setSubjectKeyId"),
    }


def _parse_key_input(ctx: MockContext, text: str, summary: str) -> tuple[PrivateKey, str]:
    try:
        return parse_private_key(text)
    except ValueError as error:
        raise _refuse(ctx, summary, str(error)) from None


def _decode_typed_pem(text: str, kind: str) -> bytes:
    """The provider's decodePEM: the first block, which must be of `kind`."""
    block = _pem_decode(text)
    if block is None:
        raise ValueError(f'failed to decode PEM of expected type "{kind}" from bytes')
    if block[0] != kind:
        raise ValueError(f'invalid PEM type - expected "{kind}", got "{block[0]}"')
    return block[1]


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def private_key(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    """tls:index/privateKey:PrivateKey; id = hashForState(public key DER), as the provider's."""
    algorithm = ctx.inputs.get("algorithm")
    if algorithm not in ALGORITHMS:
        raise _refuse(ctx, "Invalid Key Algorithm", f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    curve = ctx.inputs.get("ecdsaCurve")
    curve = DEFAULT_ECDSA_CURVE if curve is None else curve
    if curve not in _CURVES:
        raise _refuse(ctx, "Invalid Attribute Value", f"ecdsaCurve must be one of {tuple(_CURVES)}, got {curve!r}")
    rsa_bits = _optional_int(ctx, "rsaBits", None, -(2**63))
    rsa_bits = DEFAULT_RSA_BITS if rsa_bits is None else rsa_bits

    key = _generate_key(ctx, str(algorithm), rsa_bits, str(curve))
    public_key = key.public_key()
    spki = _subject_public_key_info(public_key)
    ssh_public, md5, sha256 = _openssh_public(public_key)
    ssh_private = ""
    if ssh_public:  # Go's x/crypto/ssh cannot write P224 keys either
        ssh_private = _openssh_private_key(key, int.from_bytes(ctx.seed("openssh-check")[:4]))
    outputs = {
        **ctx.inputs,
        "algorithm": algorithm,
        "ecdsaCurve": curve,  # schema defaults: in state whatever the algorithm
        "rsaBits": rsa_bits,
        "privateKeyPem": _provider_pem(key),
        "privateKeyPemPkcs8": _pkcs8_pem(key),
        "privateKeyOpenssh": ssh_private,
        "publicKeyPem": _pem_encode("PUBLIC KEY", spki),
        "publicKeyOpenssh": ssh_public,
        "publicKeyFingerprintMd5": md5,
        "publicKeyFingerprintSha256": sha256,
    }
    return _hash_for_state(spki), outputs


def self_signed_cert(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    """tls:index/selfSignedCert:SelfSignedCert; id = the serial number in decimal."""
    key_pem = _key_input(ctx, "privateKeyPem")
    key, algorithm = _parse_key_input(ctx, key_pem, "Failed to parse private key PEM")
    subject = _name_from_inputs(ctx)
    sans = _sans_from_inputs(ctx)
    template = _template(ctx, subject, sans, key.public_key(), self_signed=True)
    id_, computed = _issue(ctx, template, signer=key, issuer=None)
    outputs = {
        **ctx.inputs,
        **computed,
        "setAuthorityKeyId": _flag(ctx, "setAuthorityKeyId"),
        "keyAlgorithm": algorithm,
        "privateKeyPemWo": None,  # write-only: never in state
    }
    return id_, outputs


def cert_request(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    """tls:index/certRequest:CertRequest; id = hashForState(the CSR's DER), as the provider's."""
    key_pem = _key_input(ctx, "privateKeyPem")
    key, algorithm = _parse_key_input(ctx, key_pem, "Failed to parse private key PEM")
    subject = _name_from_inputs(ctx)
    sans = _sans_from_inputs(ctx)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_x509())
    san = sans.extension()
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    try:
        request = builder.sign(key, _signature_hash(key), ecdsa_deterministic=_ecdsa_deterministic(key))
    except (ValueError, TypeError) as error:
        raise _refuse(ctx, "Error creating certificate request", str(error)) from None
    der = request.public_bytes(serialization.Encoding.DER)
    outputs = {
        **ctx.inputs,
        "certRequestPem": _pem_encode("CERTIFICATE REQUEST", der),
        "keyAlgorithm": algorithm,
        "privateKeyPemWo": None,
    }
    return _hash_for_state(der), outputs


def _parse_request(ctx: MockContext) -> tuple[x509.CertificateSigningRequest, PublicKey, _Sans]:
    summary = "Failed to parse certificate request PEM"
    try:
        der = _decode_typed_pem(_required_string(ctx, "certRequestPem"), "CERTIFICATE REQUEST")
        request = x509.load_der_x509_csr(der)
        public_key = request.public_key()
        _key_algorithm(public_key)
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = x509.SubjectAlternativeName([])
    except (ValueError, UnsupportedAlgorithm) as error:
        raise _refuse(ctx, summary, f"failed to parse certificate request: {error}") from None
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise _refuse(ctx, summary, f"x509: unsupported public key type: {type(public_key).__name__}")
    addresses: list[IPAddress] = []
    for address in san.get_values_for_type(x509.IPAddress):
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            addresses.append(mapped or address)
    sans = _Sans(
        tuple(san.get_values_for_type(x509.DNSName)),
        tuple(addresses),
        tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
    )
    return request, public_key, sans


def locally_signed_cert(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    """tls:index/locallySignedCert:LocallySignedCert; id = the serial number in decimal."""
    ca_key_pem = _key_input(ctx, "caPrivateKeyPem")
    ca_cert_pem = _required_string(ctx, "caCertPem")
    request, public_key, sans = _parse_request(ctx)
    ca_key, algorithm = _parse_key_input(ctx, ca_key_pem, "Failed to parse CA private key PEM")
    try:
        ca_certificate = x509.load_der_x509_certificate(_decode_typed_pem(ca_cert_pem, "CERTIFICATE"))
        ca_certificate.extensions  # noqa: B018 - parse them now, as Go's ParseCertificate does
    except ValueError as error:
        raise _refuse(ctx, "Failed to parse CA certificate PEM", str(error)) from None
    if not _is_ca(ca_certificate):
        _log.warning(
            "%s (%s): Potentially Invalid Certificate Authority: the certificate given as authority is not a CA; "
            "the resulting certificate might fail certificate validation",
            ctx.type,
            ctx.name,
        )
    subject = _name_from_parsed(request.subject)
    template = _template(ctx, subject, sans, public_key, self_signed=False)
    id_, computed = _issue(ctx, template, signer=ca_key, issuer=_Issuer(ca_certificate, ca_key))
    outputs = {**ctx.inputs, **computed, "caKeyAlgorithm": algorithm, "caPrivateKeyPemWo": None}
    return id_, outputs


HANDLERS: dict[str, Callable[[MockContext], tuple[str, dict[str, Any]]]] = {
    PRIVATE_KEY: private_key,
    SELF_SIGNED_CERT: self_signed_cert,
    CERT_REQUEST: cert_request,
    LOCALLY_SIGNED_CERT: locally_signed_cert,
}


# ---------------------------------------------------------------------------------------------
# After creation: the provider's Read / ModifyPlan
# ---------------------------------------------------------------------------------------------


def ready_for_renewal(outputs: Mapping[str, Any], at: datetime | None = None) -> bool:
    """What the provider reports for a stored certificate (plain values, secrets unwrapped):
    true once `at` (default now()) reaches validityEndTime - earlyRenewalHours, or if it
    already was. The provider's ModifyPlan then plans a replacement."""
    if outputs.get("readyForRenewal"):
        return True
    end_text = outputs.get("validityEndTime")
    if not end_text:
        return False
    moment = at if at is not None else now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    early = timedelta(hours=int(outputs.get("earlyRenewalHours") or 0))
    return moment >= _parse_rfc3339(str(end_text)) - early


def refresh(outputs: Mapping[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """The provider's Read: the stored outputs, with readyForRenewal set once it is due."""
    return {**outputs, "readyForRenewal": True} if ready_for_renewal(outputs, at) else dict(outputs)
