"""The plan's own certificates as the files a server gets (for the real-server TLS tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE
from tools.engine import unwrap
from tools.plan import plan_for

SIGNED = "tls:index/locallySignedCert:LocallySignedCert"
KEY = "tls:index/privateKey:PrivateKey"
ROOT = "tls:index/selfSignedCert:SelfSignedCert"

ServerFiles = dict[str, str]  # file name under /devstack/tls -> content


def server_files(overrides: Sequence[str], services: Iterable[str]) -> dict[str, ServerFiles]:
    """Per service: server.crt (leaf, then the intermediate, as uploaded), server.key, ca.crt."""
    run = plan_for("dev", list(overrides))
    intermediate = unwrap(run.one(SIGNED, "ca-intermediate").outputs["certPem"])
    (root,) = run.by_type(ROOT)
    return {
        service: {
            CERT_FILE: unwrap(run.one(SIGNED, f"{service}-tls").outputs["certPem"]) + intermediate,
            KEY_FILE: unwrap(run.one(KEY, f"{service}-tls").outputs["privateKeyPem"]),
            CA_FILE: unwrap(root.outputs["certPem"]),
        }
        for service in services
    }
