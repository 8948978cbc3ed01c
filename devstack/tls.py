"""The shared TLS machinery the service modules use: where a server's files go, the cipher
policy, and the probes that verify a server against the stack's CA. TLS modes: off (nothing),
dual (TLS offered, plaintext still accepted while clients migrate) and required (plaintext
refused). What each server needs in each mode is in its own module (TlsSupport.settings)."""

from __future__ import annotations

import dataclasses

from devstack.model import Healthcheck, ServerTls, Service
from devstack.phases import TlsMode

TLS_DIR = "/devstack/tls"
CERT_FILE, KEY_FILE, CA_FILE = "server.crt", "server.key", "ca.crt"

# TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are strong by construction).
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!3DES:!RC4:!SHA1"

# TLS 1.2 suites by Go's names (crypto/tls CipherSuiteName): ECDHE key exchange with AES-GCM or
# ChaCha20-Poly1305 only, like CIPHERS. Our leaves are ECDSA P-256, so the ECDSA suites are the
# ones used; the RSA ones keep an RSA leaf working. TLS 1.3 suites are not configurable in Go
# and are all AEAD.
GO_CIPHER_SUITES: tuple[str, ...] = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


def server_tls(service: Service, mode: TlsMode) -> ServerTls:
    """What the server needs in this mode: its own module says, if it has anything to say."""
    if service.tls is None or service.tls.settings is None:
        return ServerTls()
    return service.tls.settings(service, mode)


def tls_files(tls_dir: str = TLS_DIR) -> tuple[str, str, str]:
    """(certificate with chain, key, CA) as the server sees them."""
    return f"{tls_dir}/{CERT_FILE}", f"{tls_dir}/{KEY_FILE}", f"{tls_dir}/{CA_FILE}"


def with_probe(service: Service, test: tuple[str, ...]) -> Healthcheck:
    """The service's health check with another probe (one that works in this TLS mode)."""
    return dataclasses.replace(service.healthcheck, test=test)


def curl_probe(ca: str, url: str) -> tuple[str, ...]:
    """The images that ship curl verify their own certificate against the CA."""
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", "--cacert", ca, url)


def https_url(service: Service, port: str, path: str) -> str:
    return f"https://localhost:{service.port(port).container}{path}"


def merged(server: ServerTls, client: ServerTls) -> ServerTls:
    """A server's own TLS settings with its settings as a client of another server."""
    return dataclasses.replace(
        server,
        env={**server.env, **client.env},
        files={**server.files, **client.files},
        args=server.args + client.args,
    )
