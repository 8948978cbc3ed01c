"""Handshakes a client attempts against real servers: the good ones and the weak ones a server
must refuse (TLS 1.1, CBC suites with SHA-1 or SHA-2 MACs), through each protocol's own way of
starting TLS (PostgreSQL's SSLRequest, MySQL's SSL request packet, or TLS from the first byte)."""

from __future__ import annotations

import socket
import ssl
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

LOCALHOST = "127.0.0.1"
SERVER_NAME = "localhost"
CBC_SUITES = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384"
GOOD_TLS12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

StartTls = Callable[[socket.socket], None]


def direct(_sock: socket.socket) -> None:
    """TLS from the first byte (Redis, HTTPS, AMQPS)."""


def postgres(sock: socket.socket) -> None:
    """PostgreSQL's (and PgBouncer's) SSLRequest; the server answers S to go on with TLS."""
    sock.sendall(struct.pack("!II", 8, 80877103))
    answer = sock.recv(1)
    if answer != b"S":
        raise ConnectionRefusedError(f"the server does not offer TLS (answered {answer!r})")


def mysql(sock: socket.socket) -> None:
    """MySQL's greeting, then a short handshake response with CLIENT_SSL: TLS follows."""
    header = _exact(sock, 4)
    _exact(sock, int.from_bytes(header[:3], "little"))
    capabilities = 0x1 | 0x200 | 0x800 | 0x8000  # long password, protocol 41, SSL, secure connection
    payload = struct.pack("<IIB23x", capabilities, 1 << 24, 33)
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([header[3] + 1]) + payload)


def mysql_offers_tls(port: int) -> bool:
    """Whether the server's greeting announces CLIENT_SSL (protocol 10: version, NUL-terminated
    server version, thread id, 8 bytes of scramble, a filler, then the capability flags)."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as sock:
        header = _exact(sock, 4)
        greeting = _exact(sock, int.from_bytes(header[:3], "little"))
    flags_at = greeting.index(b"\0", 1) + 1 + 4 + 8 + 1
    return bool(int.from_bytes(greeting[flags_at : flags_at + 2], "little") & 0x800)


def _exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        data += chunk
    return data


def context(ca: Path, *, ciphers: str | None = None, tls11: bool = False) -> ssl.SSLContext:
    """Verifies against ca alone; TLS 1.2 with `ciphers`, or TLS 1.1 only."""
    result = ssl.create_default_context(cafile=str(ca))
    if tls11:
        with warnings.catch_warnings():  # deprecated, which is the point: a client that still offers it
            warnings.simplefilter("ignore", DeprecationWarning)
            result.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            result.maximum_version = ssl.TLSVersion.TLSv1_1
        result.set_ciphers("DEFAULT:@SECLEVEL=0")
    elif ciphers is not None:
        result.minimum_version = result.maximum_version = ssl.TLSVersion.TLSv1_2
        result.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    return result


def handshake(port: int, start: StartTls, ctx: ssl.SSLContext) -> tuple[str, str]:
    """(version, suite) agreed on 127.0.0.1:port; an exception when the server refuses."""
    with socket.create_connection((LOCALHOST, port), timeout=10) as raw:
        start(raw)
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
            version, cipher = tls.version(), tls.cipher()
            assert version is not None
            assert cipher is not None
            return version, cipher[0]


def refused(port: int, start: StartTls, ctx: ssl.SSLContext) -> bool:
    """Whether the server refuses this handshake (a closed or reset connection counts)."""
    try:
        handshake(port, start, ctx)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    return False


def weak_handshakes_refused(port: int, start: StartTls, ca: Path) -> None:
    """The good suites work (so the probe itself works), then TLS 1.1 and CBC are refused."""
    version, _ = handshake(port, start, context(ca))
    assert version in ("TLSv1.2", "TLSv1.3"), version
    _, suite = handshake(port, start, context(ca, ciphers=GOOD_TLS12))
    assert "GCM" in suite or "CHACHA20" in suite, suite
    assert refused(port, start, context(ca, tls11=True)), "TLS 1.1 accepted"
    for suite in CBC_SUITES.split(":"):
        assert refused(port, start, context(ca, ciphers=suite)), f"{suite} accepted"
