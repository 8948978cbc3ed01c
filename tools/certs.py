"""The certificate inventory, read from the plan's certificates themselves (real PEMs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
    renewal: str  # from when `pulumi up` replaces it
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


def inventory(run: PlanRun) -> list[CertificateInfo]:
    entries = []
    for record in [*run.by_type(ROOT), *run.by_type(SIGNED)]:
        pem = unwrap(record.outputs.get("certPem"))
        if not pem:
            continue
        certificate = x509.load_pem_x509_certificate(pem.encode())
        early = timedelta(hours=int(record.inputs.get("earlyRenewalHours") or 0))
        not_after = certificate.not_valid_after_utc
        entries.append(
            CertificateInfo(
                resource=record.name,
                subject=certificate.subject.rfc4514_string(),
                issuer=certificate.issuer.rfc4514_string(),
                sans=_sans(certificate),
                key=_key_type(certificate),
                not_after=not_after.isoformat(),
                renewal=(not_after - early).isoformat(),
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
            f"  not after {e.not_after}   renewed from {e.renewal}",
        ]
        if e.sans:
            lines.append(f"  SANs      {', '.join(e.sans)}")
    return "\n".join(lines)
