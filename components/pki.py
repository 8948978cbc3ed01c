"""The certificate chain: a root CA that signs only an intermediate, which issues every leaf."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from devstack.certificates import LEAF_VALIDITY_DAYS, RENEWAL_WINDOW_DAYS, LeafSpec

ROOT_VALIDITY_HOURS = 10 * 365 * 24
INTERMEDIATE_VALIDITY_HOURS = 5 * 365 * 24
ORGANIZATION = "devstack"


def _ecdsa(name: str, curve: str, parent: pulumi.Resource) -> tls.PrivateKey:
    # Explicit curve: pulumi-tls would default ECDSA to P224.
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve=curve, opts=pulumi.ResourceOptions(parent=parent))


@dataclass(frozen=True)
class CertificateAuthorityArgs:
    stack: str


class CertificateAuthority(pulumi.ComponentResource):
    def __init__(self, name: str, args: CertificateAuthorityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:pki:CertificateAuthority", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        root_key = _ecdsa(f"{name}-root", "P384", self)
        self.root = tls.SelfSignedCert(
            f"{name}-root",
            private_key_pem=root_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"devstack {args.stack} Root CA", organization=ORGANIZATION
            ),
            is_ca_certificate=True,
            max_path_length=1,
            validity_period_hours=ROOT_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            set_subject_key_id=True,
            opts=child,
        )
        self.intermediate_key = _ecdsa(f"{name}-intermediate", "P384", self)
        request = tls.CertRequest(
            f"{name}-intermediate",
            private_key_pem=self.intermediate_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(
                common_name=f"devstack {args.stack} Intermediate CA", organization=ORGANIZATION
            ),
            opts=child,
        )
        # The root key signs this one certificate and nothing else.
        self.intermediate = tls.LocallySignedCert(
            f"{name}-intermediate",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=root_key.private_key_pem,
            ca_cert_pem=self.root.cert_pem,
            is_ca_certificate=True,
            max_path_length=0,
            validity_period_hours=INTERMEDIATE_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            set_subject_key_id=True,
            opts=child,
        )
        # What clients trust, and what a server sends after its own certificate.
        self.chain_pem = pulumi.Output.concat(self.intermediate.cert_pem, self.root.cert_pem)
        self.root_pem = self.root.cert_pem
        self.register_outputs({"rootCertificate": self.root.cert_pem, "chain": self.chain_pem})


@dataclass(frozen=True)
class ServiceCertificateArgs:
    leaf: LeafSpec
    authority: CertificateAuthority
    renewal: int  # the renewal period the certificate belongs to: a new period, a new certificate


class ServiceCertificate(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:pki:ServiceCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        leaf = args.leaf
        self.key = _ecdsa(f"{name}-tls", "P256", self)
        # The renewal period is part of the subject: a new period changes the request, which
        # replaces the certificate. This, unlike ready_for_renewal (pulumi-tls issue 39), does
        # replace it on the next `pulumi up`.
        request = tls.CertRequest(
            f"{name}-tls",
            private_key_pem=self.key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(
                common_name=leaf.service,
                organization=ORGANIZATION,
                organizational_unit=f"renewal period {args.renewal}",
            ),
            dns_names=list(leaf.dns_names),
            ip_addresses=list(leaf.ip_addresses),
            opts=child,
        )
        self.certificate = tls.LocallySignedCert(
            f"{name}-tls",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=args.authority.intermediate_key.private_key_pem,
            ca_cert_pem=args.authority.intermediate.cert_pem,
            validity_period_hours=LEAF_VALIDITY_DAYS * 24,
            early_renewal_hours=RENEWAL_WINDOW_DAYS * 24,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            set_subject_key_id=True,
            opts=child,
        )
        self.cert_pem = self.certificate.cert_pem
        self.key_pem = pulumi.Output.secret(self.key.private_key_pem)
        self.register_outputs({"service": leaf.service, "notAfter": self.certificate.validity_end_time})
