"""A verifying TLS client for the real-server tests: which suite a server agrees to."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path


def tls12_context(ca: Path, ciphers: str) -> ssl.SSLContext:
    """Trusts ca alone, speaks TLS 1.2 only and offers only these suites."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The suite negotiated with the server on 127.0.0.1:port, verified for the name localhost
    (ssl.SSLError when the server refuses every suite offered)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]
