"""The certificate inventory, read from the plan's certificates themselves (real PEMs)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from devstack.certificates import RENEWAL_PERIOD_DAYS
from tools.engine import PlanRun, unwrap

ROOT = "tls:index/selfSignedCert:SelfSignedCert"
SIGNED = "tls:index/locallySignedCert:LocallySignedCert"


@dataclass(frozen=True)
class CertificateInfo:
    resource: str
    subject: str
    issuer: str
    sans: tuple[str, ...]
    key: str
    not_after: str
    renewal: str  # from when `pulumi up` replaces it; "" if it never does by itself
    ca: bool


def _key_type(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


def _sans(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [str(n) for n in extension.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in extension.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


_PERIOD = re.compile(r"renewal period ([0-9]+)")


def renewal_time(certificate: x509.Certificate) -> datetime | None:
    """When the first `pulumi up` replaces the certificate: the start of the renewal period after
    the one in its subject (components/pki.py). pulumi-tls's early renewal alone replaces nothing
    (pulumi-tls issue 39), so a certificate without a period is never replaced by itself."""
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    periods = [int(m.group(1)) for u in units if (m := _PERIOD.fullmatch(str(u.value)))]
    if not periods:
        return None
    return datetime.fromtimestamp(0, UTC) + timedelta(days=(periods[0] + 1) * RENEWAL_PERIOD_DAYS)


def inventory(run: PlanRun) -> list[CertificateInfo]:
    entries = []
    for record in [*run.by_type(ROOT), *run.by_type(SIGNED)]:
        pem = unwrap(record.outputs.get("certPem"))
        if not pem:
            continue
        certificate = x509.load_pem_x509_certificate(pem.encode())
        not_after = certificate.not_valid_after_utc
        renewal = renewal_time(certificate)
        entries.append(
            CertificateInfo(
                resource=record.name,
                subject=certificate.subject.rfc4514_string(),
                issuer=certificate.issuer.rfc4514_string(),
                sans=_sans(certificate),
                key=_key_type(certificate),
                not_after=not_after.isoformat(),
                renewal=renewal.isoformat() if renewal else "",
                ca=_is_ca(certificate),
            )
        )
    return entries


def inventory_json(entries: list[CertificateInfo]) -> dict[str, Any]:
    return {"schema": "devstack-certs/1", "certificates": [vars(e) for e in entries]}


def render_inventory(entries: list[CertificateInfo]) -> str:
    if not entries:
        return "No certificates in this plan: TLS is off (phase 0). Try --set phase=1."
    lines = []
    for e in entries:
        lines += [
            f"{e.resource}{' (CA)' if e.ca else ''}",
            f"  subject   {e.subject}",
            f"  issuer    {e.issuer}",
            f"  key       {e.key}",
            f"  not after {e.not_after}   "
            + (f"renewed from {e.renewal}" if e.renewal else "not renewed by `pulumi up` by itself"),
        ]
        if e.sans:
            lines.append(f"  SANs      {', '.join(e.sans)}")
    return "\n".join(lines)
