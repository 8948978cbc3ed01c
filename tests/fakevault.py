"""An in-process fake of the Vault HTTP API, for testing the scripts that talk to Vault.

Stdlib only (``load_policy_hcl`` also needs python-hcl2); it binds to 127.0.0.1 on an ephemeral
port. What it serves, with Vault's status codes and JSON shapes:

- ``sys/health``, ``sys/init``, ``sys/seal-status``, ``sys/unseal`` (Shamir: ``secret_shares``
  keys of 33 random bytes, ``secret_threshold`` of them unseal; a share that is not one of the
  keys is only detected when the threshold is reached, as in Vault, and resets the progress);
- ``auth/token/lookup-self``;
- a KV version 2 engine mounted at ``secret/`` (``secret/data/<path>``: read, create, update);
- once :meth:`FakeVault.enable_approle` has run, the AppRole auth method at ``auth/approle/``:
  ``login``, ``role/<name>`` (write), ``role/<name>/role-id`` (read), ``role/<name>/secret-id``
  (generate; list: the accessors, 404 when there are none), ``role/<name>/secret-id/lookup`` (204
  for an unknown secret ID) and ``role/<name>/secret-id-accessor/destroy`` (500 for an unknown
  accessor, as path_role.go answers with a plain error). Roles and secret IDs are made with
  :meth:`FakeVault.create_role` and :meth:`FakeVault.create_secret_id`, or through the API;
- ``sys/auth`` (list) and ``sys/auth/<path>`` (enable, ``type`` approle only: another AppRole
  mount, e.g. ``auth/approle-provisioner/``, with roles of its own);
- ``sys/policies/acl/<name>`` and the older ``sys/policy/<name>`` (write, read, delete; HCL
  parsed as :func:`parse_policy_hcl`);
- ``auth/token/revoke-self`` (the token is gone at once: 403 afterwards);
- root token generation as http/sys_generate_root.go serves it: ``sys/generate-root/attempt``
  (read, start with a generated OTP, cancel) and ``sys/generate-root/update`` (one unseal key per
  call; at the threshold a new root token, XOR'd with the OTP and raw-base64 encoded), neither
  needing a token; and ``sys/decode-token``, which does need one (Vault's sys backend does not list
  it among its unauthenticated paths).

Every other path answers as Vault does for a path with no handler. Requests to anything but
``sys/`` are refused with 503 while Vault is sealed (or not initialised), then need a token
(``X-Vault-Token`` or ``Authorization: Bearer``) whose policies grant the capability the request
needs. Policies are ``{path: capabilities}`` dicts (:meth:`FakeVault.set_policy`, or Vault's own
HCL policy documents with :meth:`FakeVault.load_policy_hcl`) with Vault's matching rules: an exact
path beats every glob, ``*`` at the end is a prefix glob, ``+`` matches one path segment, the most
specific glob wins (Vault's priority rules), and ``deny`` on the chosen path wins over any grant.

Time is :attr:`FakeVault.clock` (``clock.advance(seconds)``): tokens stop working at the end of
their TTL (403, as for an unknown token) and secret IDs at the end of theirs. The client's
address is the request's source address (127.0.0.1 in tests): bind a role, a secret ID or a
token to e.g. ``10.9.9.9/32`` to see what an address outside the binding gets.

More endpoints plug in with :meth:`FakeVault.add_route`; :attr:`FakeVault.after_request` runs
after each answer (to advance the clock between two requests of a script, say), and
:attr:`FakeVault.before_request` before each request: returning a :class:`Fault` makes that one
request fail (an error status, or a connection closed without an answer).

Plain HTTP by default. ``FakeVault(tls=(cert_chain_path, key_path))`` (or ``tls=`` an
``ssl.SSLContext`` made for the server side) serves HTTPS instead, TLS 1.2 or newer: each
connection's handshake runs in its own thread, :attr:`FakeVault.address` is then
``https://127.0.0.1:<port>`` (:meth:`FakeVault.url_for` gives it with another host name, e.g.
``localhost``), :attr:`FakeVault.tls_connections` counts the connections whose handshake began
(the client has seen the certificate once the count is up), and :attr:`FakeVault.tls_failures`
the handshakes that failed (a client that refused the certificate during the handshake, say),
with the reasons in :attr:`FakeVault.tls_errors`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

VERSION = "1.18.5"
SEALED = "Vault is sealed"
PERMISSION_DENIED = "permission denied"
# What Vault answers when a valid token's policies lack the capability (a formatted multierror).
ACL_DENIED = "1 error occurred:\n\t* permission denied\n\n"

DEFAULT_POLICY: dict[str, list[str]] = {
    "auth/token/lookup-self": ["read"],
    "auth/token/renew-self": ["update"],
    "auth/token/revoke-self": ["update"],
    "sys/capabilities-self": ["update"],
}

_TOKEN_ALPHABET = string.ascii_letters + string.digits

# AppRole's answers (builtin/credential/approle/path_login.go). Vault formats two of its CIDR
# refusals (the role's, and a secret ID's with a use limit) with a nil error behind "%w", so
# they end in Go's "%!w(<nil>)" marker.
INVALID_ROLE_OR_SECRET_ID = "invalid role or secret ID"
_GO_NIL_ERROR = "%!w(<nil>)"
# What a token gets without a TTL of its own: the system's default (and max) lease TTL, 32 days.
SYSTEM_MAX_TTL = 32 * 24 * 3600
# Capabilities a policy may grant (vault/policy.go), and the old-style "policy = ..." shorthands.
CAPABILITIES = frozenset({"create", "read", "update", "delete", "list", "sudo", "patch", "deny"})
_OLD_POLICIES: dict[str, tuple[str, ...]] = {
    "deny": ("deny",),
    "read": ("read", "list"),
    "write": ("create", "read", "update", "delete", "list"),
    "sudo": ("create", "read", "update", "delete", "list", "sudo"),
}
_PATH_KEYS = frozenset(
    {
        "comment",
        "policy",
        "capabilities",
        "allowed_parameters",
        "denied_parameters",
        "required_parameters",
        "min_wrapping_ttl",
        "max_wrapping_ttl",
        "mfa_methods",
        "control_group",
    }
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    """The fake's time: the wall clock plus whatever the test has advanced it by."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen: float | None = None
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return (time.time() if self._frozen is None else self._frozen) + self._offset

    def freeze(self) -> None:
        """Stop the wall clock: from now on only :meth:`advance` moves time (for a test that
        counts exact seconds, which a slow request could otherwise eat into)."""
        with self._lock:
            self._frozen = time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclass(frozen=True)
class Request:
    """One API request, as a route handler sees it. ``path`` has no ``/v1/`` prefix."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Message
    body: dict[str, Any]
    token: str | None
    params: Mapping[str, str] = field(default_factory=dict)  # named groups of the route's pattern
    remote_addr: str = "127.0.0.1"  # the client's address, as Vault's req.Connection.RemoteAddr


@dataclass(frozen=True)
class Response:
    status: int
    body: Any = None  # JSON-serialisable; None: no body (204)


class VaultError(Exception):
    """Raised by a handler to answer ``{"errors": [...]}`` with a status code."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


Handler = Callable[[Request], Response]
# Which capability a request needs on its ACL path: (request) -> (acl path, capability).
Capability = Callable[[Request], tuple[str, str]]


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    # None: no token needed (sys/ endpoints, logins); else what to check against the token's ACL
    capability: Capability | None
    sealed_ok: bool  # answered while sealed (only sys/ endpoints are)


@dataclass
class TokenEntry:
    token: str
    policies: tuple[str, ...]
    accessor: str = field(default_factory=lambda: _random_id(24))
    creation_time: int = field(default_factory=lambda: int(datetime.now(UTC).timestamp()))
    ttl: int = 0  # seconds at creation; 0: never expires (the root token)
    expires_at: float | None = None  # on FakeVault.clock
    bound_cidrs: tuple[str, ...] = ()  # usable only from these addresses
    renewable: bool = False
    meta: dict[str, str] = field(default_factory=dict)
    path: str = "auth/token/create"


@dataclass
class AppRole:
    """A role of the AppRole auth method (what ``auth/approle/role/<name>`` holds)."""

    name: str
    role_id: str
    policies: tuple[str, ...]
    token_ttl: int
    token_max_ttl: int
    secret_id_ttl: int  # 0: secret IDs never expire
    secret_id_num_uses: int  # 0: unlimited
    secret_id_bound_cidrs: tuple[str, ...]
    token_bound_cidrs: tuple[str, ...]
    mount: str = "approle"  # the auth mount the role lives on
    no_default_policy: bool = False  # token_no_default_policy


def role_key(mount: str, name: str) -> str:
    """Where FakeVault.approles keeps a role: its name on ``approle``, ``<mount>/<name>`` elsewhere."""
    return name.lower() if mount == "approle" else f"{mount}/{name.lower()}"


@dataclass
class SecretIdEntry:
    """One secret ID of a role, with its own limits (copied from the role when it was made)."""

    role: str
    accessor: str
    num_uses: int  # uses left; 0: unlimited
    expires_at: float | None
    cidr_list: tuple[str, ...]
    token_bound_cidrs: tuple[str, ...]


@dataclass
class KvVersion:
    data: dict[str, Any]
    version: int
    created_time: str = field(default_factory=_now)


@dataclass(frozen=True)
class InitResult:
    keys: list[str]  # hex
    keys_base64: list[str]
    root_token: str

    def as_json(self) -> dict[str, Any]:
        return {"keys": self.keys, "keys_base64": self.keys_base64, "root_token": self.root_token}


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


def _method_capability(method: str, exists: bool) -> str:
    if method == "GET":
        return "read"
    if method in ("POST", "PUT"):
        return "update" if exists else "create"
    if method == "DELETE":
        return "delete"
    if method == "PATCH":
        return "patch"
    return "list"


def _glob_regex(rule: str) -> re.Pattern[str]:
    prefix = rule.endswith("*")
    body = rule[:-1] if prefix else rule
    parts = ["[^/]+" if segment == "+" else re.escape(segment) for segment in body.split("/")]
    return re.compile("/".join(parts) + (".*" if prefix else ""), re.DOTALL)


def _glob_priority(rule: str) -> tuple[int, bool, int, int, str]:
    """Vault's priority matching: a larger key is the more specific glob."""
    wildcards = [i for i in (rule.find("+"), rule.find("*")) if i >= 0]
    first = min(wildcards) if wildcards else len(rule)
    plus_segments = sum(1 for segment in rule.rstrip("*").split("/") if segment == "+")
    return (first, not rule.endswith("*"), -plus_segments, len(rule), rule)


def _has_segment_wildcard(rule: str) -> bool:
    return rule == "+" or "/+" in rule or rule.startswith("+/")


def _is_exact(rule: str) -> bool:
    """vault/policy.go: only a trailing ``*`` is a glob, and a ``+`` segment a wildcard."""
    return not rule.endswith("*") and not _has_segment_wildcard(rule)


def allowed(rules: Mapping[str, Iterable[str]], path: str, capability: str) -> bool:
    """Whether merged policy ``rules`` (path -> capabilities) grant ``capability`` on ``path``."""
    exact = {p: set(c) for p, c in rules.items() if _is_exact(p)}
    if path in exact:
        chosen = exact[path]
    else:
        globs = [p for p in rules if p not in exact and _glob_regex(p).fullmatch(path)]
        if not globs:
            return False
        chosen = set(rules[max(globs, key=_glob_priority)])
    return "deny" not in chosen and capability in chosen


def encode_root_token(token: str, otp: str) -> str:
    """vault/generate_root.go: the token XOR'd with the OTP (same length), raw standard base64."""
    if len(token) != len(otp):
        raise ValueError("the OTP and the token differ in length")
    mixed = bytes(a ^ b for a, b in zip(token.encode(), otp.encode(), strict=True))
    return base64.b64encode(mixed).decode().rstrip("=")


def decode_root_token(encoded: str, otp: str) -> str:
    """sdk/helper/roottoken.DecodeToken with an OTP length: raw base64, then XOR with the OTP."""
    try:
        mixed = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise VaultError(400, "error decoding base64'd token: illegal base64 data") from None
    if len(mixed) != len(otp):
        raise VaultError(400, "length of byte slices is not equivalent")
    return bytes(a ^ b for a, b in zip(mixed, otp.encode(), strict=True)).decode("latin-1")


def _in_cidrs(address: str, cidrs: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _cidr_list(values: Iterable[str], what: str) -> tuple[str, ...]:
    checked: list[str] = []
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise VaultError(400, f"failed to parse {what}: invalid CIDR address {value!r}") from None
        checked.append(value)
    return tuple(checked)


def _go_quoted(values: Iterable[str]) -> str:
    """A []string as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _subset(inner: Iterable[str], outer: Iterable[str]) -> bool:
    """Whether every block of ``inner`` lies within a block of ``outer``."""

    def within(net: ipaddress.IPv4Network | ipaddress.IPv6Network, other: str) -> bool:
        wider = ipaddress.ip_network(other, strict=False)
        return (
            net.version == wider.version
            and int(net.network_address) >= int(wider.network_address)
            and int(net.broadcast_address) <= int(wider.broadcast_address)
        )

    return all(any(within(ipaddress.ip_network(c, strict=False), o) for o in outer) for c in inner)


def _hcl_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise VaultError(400, f"failed to parse policy: {where}: expected a string, got {value!r}")
    return value


def _policy_document(text: str) -> dict[str, Any]:
    document: Any
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as error:
            raise VaultError(400, f"failed to parse policy: {error}") from None
    else:
        import hcl2  # python-hcl2; only the HCL helpers need it

        options = hcl2.SerializationOptions(
            with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
        )
        try:
            document = hcl2.loads(text, serialization_options=options)
        except Exception as error:  # lark's parse errors
            lines = str(error).strip().splitlines()
            raise VaultError(400, f"failed to parse policy: {lines[0] if lines else type(error).__name__}") from None
    if not isinstance(document, dict):
        raise VaultError(400, "failed to parse policy: does not contain a root object")
    for key in document:
        if key not in ("name", "path"):
            raise VaultError(400, f'failed to parse policy: invalid key "{key}"')
    return document


def _path_capabilities(key: str, body: Any) -> list[str]:
    """One path block's capabilities, as vault/policy.go reads them."""
    if not isinstance(body, dict):
        raise VaultError(400, f'failed to parse policy: path "{key}": the block has no body')
    for attribute in body:
        if attribute not in _PATH_KEYS:
            raise VaultError(400, f'failed to parse policy: path "{key}": invalid key "{attribute}"')
    raw = body.get("capabilities", [])
    capabilities = [_hcl_string(c, f'path "{key}": capabilities') for c in (raw if isinstance(raw, list) else [raw])]
    if "policy" in body:
        old = _hcl_string(body["policy"], f'path "{key}": policy')
        if old not in _OLD_POLICIES:
            raise VaultError(400, f'failed to parse policy: path "{key}": invalid policy "{old}"')
        capabilities = list(_OLD_POLICIES[old]) if old == "deny" else [*capabilities, *_OLD_POLICIES[old]]
    for capability in capabilities:
        if capability == "deny":
            return ["deny"]
        if capability not in CAPABILITIES:
            raise VaultError(400, f'failed to parse policy: path "{key}": invalid capability "{capability}"')
    return capabilities


def parse_policy_hcl(text: str) -> dict[str, list[str]]:
    """A Vault ACL policy document (HCL, or its JSON form) as ``{path: capabilities}``.

    What vault/policy.go accepts: top-level ``name`` and ``path`` blocks only; in a path block,
    ``capabilities`` (or an old-style ``policy = "read"``, ``"write"``, ``"sudo"``, ``"deny"``)
    and the keys the fake does not model (parameters, wrapping TTLs, MFA, control groups), which
    are checked for but ignored. A leading ``/`` is dropped, ``deny`` drops every other
    capability, ``+*`` is refused, and blocks for the same path add up, ``deny`` winning.
    Errors raise :class:`VaultError` (400) with Vault's "failed to parse policy: ..." wording.
    """
    document = _policy_document(text)
    blocks: list[tuple[str, Any]] = []
    raw_paths = document.get("path", [])
    for group in raw_paths if isinstance(raw_paths, list) else [raw_paths]:
        if not isinstance(group, dict):
            raise VaultError(400, "failed to parse policy: a path block needs a path and a body")
        blocks.extend(group.items())
    rules: dict[str, set[str]] = {}
    for key, body in blocks:
        path = key[1:] if key.startswith("/") else key
        if "+*" in path:
            raise VaultError(
                400, f"failed to parse policy: path \"{path}\": invalid use of wildcards ('+*' is forbidden)"
            )
        capabilities = _path_capabilities(key, body)
        merged = rules.setdefault(path, set())
        if "deny" in merged or "deny" in capabilities:
            merged.clear()
            merged.add("deny")
        else:
            merged.update(capabilities)
    return {path: sorted(caps) for path, caps in rules.items()}


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        assert isinstance(self.server, _Server)
        status, payload = self.server.vault.handle(
            self.command, self.path, self.headers, raw, remote_addr=str(self.client_address[0])
        )
        if status == DROPPED:  # a Fault(drop=True): the connection closes without an answer
            self.close_connection = True
            return
        self.send_response(status)
        if isinstance(payload, bytes):  # a raw answer set with FakeVault.override
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Cache-Control", "no-store")
        if payload is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, vault: FakeVault, port: int, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", port), _HttpHandler)
        self.vault = vault
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # the handshake runs here, in the connection's own thread: a client that stalls or
        # refuses the certificate holds up no one else
        assert isinstance(request, socket.socket)
        request.settimeout(10)  # for the handshake, the requests and the close alike
        self.vault.tls_connection()
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.vault.tls_handshake_failed(error)
            return
        try:
            super().finish_request(conn, client_address)
            with contextlib.suppress(ssl.SSLError, OSError):
                conn.unwrap()  # close_notify, so the client sees a clean end of the answer
        finally:
            conn.close()


def server_tls_context(cert_chain: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server-side context for FakeVault(tls=...): TLS 1.2 or newer, no client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_chain, key)
    return context


# The status a dropped request is recorded with (no answer was sent).
DROPPED = 0


@dataclass(frozen=True)
class Fault:
    """What FakeVault.before_request may answer a request with instead of serving it."""

    status: int = 500
    body: bytes = b'{"errors":["injected fault"]}\n'
    drop: bool = False  # close the connection without any answer (status and body unused)


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    user_agent: str
    remote_addr: str = "127.0.0.1"


class FakeVault:
    """A Vault server on 127.0.0.1:<ephemeral>. Use as a context manager, or start()/stop()."""

    version: ClassVar[str] = VERSION

    def __init__(
        self,
        port: int = 0,
        tls: ssl.SSLContext | tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    ) -> None:
        self._requested_port = port  # 0: an ephemeral port
        # HTTPS with this server context (or (certificate chain, key) files); None: plain HTTP
        self.tls: ssl.SSLContext | None = server_tls_context(*tls) if isinstance(tls, tuple) else tls
        if self.tls is not None and self.tls.minimum_version < ssl.TLSVersion.TLSv1_2:
            self.tls.minimum_version = ssl.TLSVersion.TLSv1_2  # never anything older
        self.tls_connections = 0  # TLS handshakes begun
        self.tls_failures = 0  # TLS handshakes that failed
        self.tls_errors: list[str] = []  # and why, as the server saw it
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.routes: list[Route] = []
        # state (what Vault's storage would keep)
        self.initialized = False
        self.sealed = True
        self.secret_shares = 0
        self.secret_threshold = 0
        self.unseal_keys: list[bytes] = []
        self.root_token: str | None = None
        self.tokens: dict[str, TokenEntry] = {}
        self.revoked_tokens: dict[str, TokenEntry] = {}  # tokens whose TTL ran out
        self.policies: dict[str, dict[str, list[str]]] = {"default": dict(DEFAULT_POLICY)}
        self.kv: dict[str, list[KvVersion]] = {}
        self.policy_texts: dict[str, str] = {}  # the documents load_policy_hcl was given
        self.approle_enabled = False
        self.auth_mounts: dict[str, str] = {"token": "token"}  # path (no slash) -> type
        self.approles: dict[str, AppRole] = {}  # role_key(mount, name) ->
        self.secret_ids: dict[tuple[str, str], SecretIdEntry] = {}  # (role name, secret ID) ->
        self.clock = Clock()
        self.revoked_by_request: set[str] = set()  # tokens revoked through auth/token/revoke-self
        # volatile state (lost on seal)
        self._unseal_parts: list[bytes] = []
        self._unseal_nonce = ""
        # the root generation attempt in progress: its nonce, OTP and the keys given so far
        self.generate_root_nonce = ""
        self.generate_root_otp = ""
        self._generate_root_parts: list[bytes] = []
        # bookkeeping for assertions
        self.counts: Counter[tuple[str, str]] = Counter()
        self.log: list[RequestRecord] = []
        self.overrides: dict[str, tuple[int, bytes]] = {}
        # called with each request's record once it is answered (under the fake's lock)
        self.after_request: Callable[[RequestRecord], None] | None = None
        # called before each request is handled (under the fake's lock), with its number (1: the
        # first), method and path: None serves it; a Fault answers it instead (fault injection)
        self.before_request: Callable[[int, str, str], Fault | None] | None = None
        self._install_routes()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeVault:
        if self._server is None:
            self._server = _Server(self, self._requested_port, self.tls)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fakevault", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeVault is not running")
        return self._server.server_address[1]

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    @property
    def address(self) -> str:
        return self.url_for("127.0.0.1")

    def url_for(self, host: str) -> str:
        """The address with another name for 127.0.0.1 (one the certificate names, for HTTPS)."""
        return f"{self.scheme}://{host}:{self.port}"

    def tls_connection(self) -> None:
        with self._lock:
            self.tls_connections += 1

    def tls_handshake_failed(self, error: BaseException) -> None:
        with self._lock:
            self.tls_failures += 1
            self.tls_errors.append(str(error))

    # -- test helpers (no request is counted) -----------------------------------------------

    def initialize(self, secret_shares: int = 5, secret_threshold: int = 3) -> InitResult:
        """What ``PUT sys/init`` does; Vault stays sealed."""
        with self._lock:
            if self.initialized:
                raise VaultError(400, "Vault is already initialized")
            if not 1 <= secret_threshold <= secret_shares:
                raise VaultError(400, "invalid seal configuration: threshold must be between 1 and shares")
            if secret_shares > 1 and secret_threshold == 1:
                raise VaultError(
                    400, "invalid seal configuration: threshold must be greater than one for multiple shares"
                )
            self.secret_shares, self.secret_threshold = secret_shares, secret_threshold
            self.unseal_keys = [secrets.token_bytes(33) for _ in range(secret_shares)]
            self.root_token = "hvs." + _random_id(24)
            self.tokens[self.root_token] = TokenEntry(self.root_token, ("root",))
            self.initialized = True
            self.sealed = True
            self._reset_unseal()
            return self.init_result()

    def init_result(self) -> InitResult:
        if self.root_token is None:
            raise RuntimeError("Vault is not initialised")
        return InitResult(
            keys=[k.hex() for k in self.unseal_keys],
            keys_base64=[base64.b64encode(k).decode() for k in self.unseal_keys],
            root_token=self.root_token,
        )

    def unseal_all(self) -> None:
        with self._lock:
            if not self.initialized:
                raise RuntimeError("Vault is not initialised")
            self.sealed = False
            self._reset_unseal()

    def seal(self) -> None:
        """A container restart: sealed again, storage (keys, tokens, policies, secrets) kept."""
        with self._lock:
            self.sealed = True
            self._reset_unseal()

    def ready(self) -> str:
        """Initialised (one key share) and unsealed; returns the root token."""
        result = self.initialize(1, 1)
        self.unseal_all()
        return result.root_token

    def put_secret(self, path: str, data: Mapping[str, Any]) -> int:
        """Write a new version of ``secret/<path>``; returns its version number."""
        with self._lock:
            versions = self.kv.setdefault(path.strip("/"), [])
            versions.append(KvVersion(dict(data), len(versions) + 1))
            return len(versions)

    def get_secret(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            versions = self.kv.get(path.strip("/"))
            return dict(versions[-1].data) if versions else None

    def set_policy(self, name: str, rules: Mapping[str, Iterable[str]]) -> None:
        with self._lock:
            self.policies[name] = {path: list(caps) for path, caps in rules.items()}

    def load_policy_hcl(self, name: str, text: str) -> dict[str, list[str]]:
        """Store an ACL policy written as Vault's HCL (see :func:`parse_policy_hcl`); returns its rules."""
        rules = parse_policy_hcl(text)
        with self._lock:
            self.set_policy(name, rules)
            self.policy_texts[name] = text
        return rules

    def create_token(
        self,
        policies: Iterable[str] = (),
        *,
        no_default_policy: bool = False,
        ttl: int = 0,
        bound_cidrs: Iterable[str] = (),
    ) -> str:
        """A service token; ``ttl`` 0: it never expires."""
        with self._lock:
            wanted: list[str] = [] if no_default_policy else ["default"]
            names = tuple(dict.fromkeys([*wanted, *policies]))
            return self._issue_token(names, ttl=ttl, bound_cidrs=_cidr_list(bound_cidrs, "bound_cidrs")).token

    def _issue_token(
        self,
        policies: tuple[str, ...],
        *,
        ttl: int = 0,
        bound_cidrs: tuple[str, ...] = (),
        renewable: bool = False,
        meta: Mapping[str, str] | None = None,
        path: str = "auth/token/create",
    ) -> TokenEntry:
        # hvs. and 24 characters like the fake's root token; Vault's login tokens are longer (95)
        token = "hvs." + _random_id(91 if path != "auth/token/create" else 24)
        now = self.clock.now()
        entry = TokenEntry(
            token,
            policies,
            creation_time=int(now),
            ttl=ttl,
            expires_at=now + ttl if ttl else None,
            bound_cidrs=bound_cidrs,
            renewable=renewable,
            meta=dict(meta or {}),
            path=path,
        )
        self.tokens[token] = entry
        return entry

    # -- AppRole (test helpers) --------------------------------------------------------------

    def enable_approle(self, mount: str = "approle") -> None:
        """``vault auth enable [-path=<mount>] approle``: serves ``auth/<mount>/``."""
        with self._lock:
            if mount in self.auth_mounts:
                return
            self.auth_mounts[mount] = "approle"
            if mount == "approle":
                self.approle_enabled = True
            base = "auth/" + re.escape(mount)
            login = partial(self._approle_login, mount=mount)
            self.add_route(["PUT", "POST"], base + r"/login", login)
            self.add_route(
                ["PUT", "POST"],
                base + r"/role/(?P<role>[^/]+)",
                partial(self._approle_write_role, mount=mount),
                capability=lambda r: (r.path, "update" if self._role_of(mount, r) else "create"),
            )
            self.add_route(
                ["GET"],
                base + r"/role/(?P<role>[^/]+)/role-id",
                partial(self._approle_role_id, mount=mount),
                capability=lambda r: (r.path, "read"),
            )
            self.add_route(
                ["PUT", "POST", "LIST"],
                base + r"/role/(?P<role>[^/]+)/secret-id",
                partial(self._approle_secret_ids, mount=mount),
                capability=lambda r: (r.path, "list" if r.method == "LIST" else "update"),
            )
            self.add_route(
                ["PUT", "POST"],
                base + r"/role/(?P<role>[^/]+)/secret-id/lookup",
                partial(self._approle_lookup_secret_id, mount=mount),
                capability=lambda r: (r.path, "update"),
            )
            self.add_route(
                ["PUT", "POST", "DELETE"],
                base + r"/role/(?P<role>[^/]+)/secret-id-accessor/destroy",
                partial(self._approle_destroy_by_accessor, mount=mount),
                capability=lambda r: (r.path, "delete" if r.method == "DELETE" else "update"),
            )

    def _role_of(self, mount: str, request: Request) -> AppRole | None:
        return self.approles.get(role_key(mount, request.params["role"]))

    def create_role(
        self,
        name: str,
        policies: Iterable[str] = (),
        *,
        token_ttl: int = 3600,
        token_max_ttl: int = 86400,
        secret_id_ttl: int = 0,
        secret_id_num_uses: int = 0,
        secret_id_bound_cidrs: Iterable[str] = (),
        token_bound_cidrs: Iterable[str] = (),
        role_id: str | None = None,
        mount: str = "approle",
        no_default_policy: bool = False,
    ) -> str:
        """``vault write auth/<mount>/role/<name> ...``; returns the role's role_id (a UUID)."""
        with self._lock:
            if self.auth_mounts.get(mount) != "approle":
                raise RuntimeError(f"AppRole is not enabled at {mount}: call enable_approle() first")
            if min(token_ttl, token_max_ttl, secret_id_ttl, secret_id_num_uses) < 0:
                raise VaultError(400, "TTLs and secret_id_num_uses cannot be negative")
            if token_max_ttl and token_ttl > token_max_ttl:
                raise VaultError(400, "token_ttl should not be greater than token_max_ttl")
            previous = self.approles.get(role_key(mount, name))
            role = AppRole(
                name=role_key(mount, name),
                role_id=role_id or (previous.role_id if previous else str(uuid.uuid4())),
                policies=tuple(dict.fromkeys(p.lower() for p in policies)),
                token_ttl=token_ttl,
                token_max_ttl=token_max_ttl,
                secret_id_ttl=secret_id_ttl,
                secret_id_num_uses=secret_id_num_uses,
                secret_id_bound_cidrs=_cidr_list(secret_id_bound_cidrs, "secret_id_bound_cidrs"),
                token_bound_cidrs=_cidr_list(token_bound_cidrs, "token_bound_cidrs"),
                mount=mount,
                no_default_policy=no_default_policy,
            )
            if any(
                r.role_id == role.role_id and r.name != role.name and r.mount == mount for r in self.approles.values()
            ):
                raise VaultError(400, "role_id already in use")
            self.approles[role.name] = role
            return role.role_id

    def role_id(self, role: str) -> str:
        with self._lock:
            return self.approles[role.lower()].role_id

    def create_secret_id(
        self,
        role: str,
        ttl: int | None = None,
        cidr_list: Iterable[str] | None = None,
        *,
        num_uses: int | None = None,
        token_bound_cidrs: Iterable[str] | None = None,
    ) -> str:
        """``vault write -f auth/approle/role/<role>/secret-id``; returns the secret_id (a UUID).

        ``ttl`` and ``num_uses`` default to the role's and are bounded by them (Vault's rule);
        ``cidr_list`` must lie within the role's ``secret_id_bound_cidrs`` when it has any.
        """
        with self._lock:
            return self._new_secret_id(role.lower(), ttl, cidr_list, num_uses, token_bound_cidrs)[0]

    def _new_secret_id(
        self,
        role_name: str,
        ttl: int | None,
        cidr_list: Iterable[str] | None,
        num_uses: int | None,
        token_bound_cidrs: Iterable[str] | None,
    ) -> tuple[str, SecretIdEntry]:
        role = self.approles.get(role_name)
        if role is None:
            raise VaultError(400, f'role "{role_name}" does not exist')
        cidrs = _cidr_list(cidr_list or (), "cidr_list")
        if cidrs and role.secret_id_bound_cidrs and not _subset(cidrs, role.secret_id_bound_cidrs):
            raise VaultError(
                400,
                "failed to verify subset relationship between CIDR blocks on the role "
                f"{_go_quoted(role.secret_id_bound_cidrs)} and CIDR blocks on the secret ID {_go_quoted(cidrs)}: "
                + _GO_NIL_ERROR,
            )
        token_cidrs = _cidr_list(token_bound_cidrs or (), "token_bound_cidrs")
        if token_cidrs and role.token_bound_cidrs and not _subset(token_cidrs, role.token_bound_cidrs):
            raise VaultError(400, "token_bound_cidrs on the secret ID must be a subset of the role's")
        wanted_ttl = role.secret_id_ttl if ttl is None else ttl
        if role.secret_id_ttl and (wanted_ttl <= 0 or wanted_ttl > role.secret_id_ttl):
            wanted_ttl = role.secret_id_ttl
        uses = role.secret_id_num_uses if num_uses is None else num_uses
        if role.secret_id_num_uses and (uses <= 0 or uses > role.secret_id_num_uses):
            uses = role.secret_id_num_uses
        secret_id = str(uuid.uuid4())
        entry = SecretIdEntry(
            role=role.name,
            accessor=str(uuid.uuid4()),
            num_uses=max(uses, 0),
            expires_at=self.clock.now() + wanted_ttl if wanted_ttl > 0 else None,
            cidr_list=cidrs,
            token_bound_cidrs=token_cidrs,
        )
        self.secret_ids[(role.name, secret_id)] = entry
        return secret_id, entry

    def override(self, path: str, status: int, body: bytes) -> None:
        """Answer every request for ``path`` (no ``/v1/``) with ``status`` and these raw bytes."""
        with self._lock:
            self.overrides[path] = (status, body)

    def count(self, path: str, *methods: str) -> int:
        """Requests received for ``path`` (no ``/v1/``), for the given methods (default: any)."""
        with self._lock:
            wanted = {m.upper() for m in methods}
            return sum(n for (m, p), n in self.counts.items() if p == path and (not wanted or m in wanted))

    def add_route(
        self,
        methods: Iterable[str],
        pattern: str,
        handler: Handler,
        *,
        capability: Capability | None = None,
        sealed_ok: bool = False,
    ) -> None:
        """Serve ``pattern`` (a regex matched against the whole path after ``/v1/``).

        ``capability`` None: no token needed (like a login endpoint). The handler may raise
        :class:`VaultError`; its ``Request.params`` holds the pattern's named groups.
        """
        self.routes.append(
            Route(frozenset(m.upper() for m in methods), re.compile(pattern), handler, capability, sealed_ok)
        )

    # -- dispatch ---------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Message, raw_body: bytes, remote_addr: str = "127.0.0.1"
    ) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        path = url.path[len("/v1/") :] if url.path.startswith("/v1/") else None
        with self._lock:
            payload: Any
            fault = None
            if self.before_request is not None:
                fault = self.before_request(len(self.log) + 1, method.upper(), path or url.path)
            if fault is not None:
                status, payload = (DROPPED, None) if fault.drop else (fault.status, fault.body)
            elif path is None:
                status, payload = 404, None
            elif path in self.overrides:
                status, payload = self.overrides[path]
            else:
                try:
                    response = self._dispatch(
                        method.upper(), path, dict(parse_qsl(url.query)), headers, raw_body, remote_addr=remote_addr
                    )
                    status, payload = response.status, response.body
                except VaultError as error:
                    status, payload = error.status, {"errors": error.errors}
            self.counts[(method.upper(), path or url.path)] += 1
            agent = headers.get("User-Agent") or ""
            record = RequestRecord(method.upper(), path or url.path, status, agent, remote_addr)
            self.log.append(record)
            if self.after_request is not None:
                self.after_request(record)
            return status, payload

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Message,
        raw_body: bytes,
        *,
        remote_addr: str = "127.0.0.1",
    ) -> Response:
        if method == "GET" and query.get("list") == "true":
            method = "LIST"
        route, params = self._match(path)
        if self.sealed and (route is None or not route.sealed_ok):
            raise VaultError(503, SEALED)
        token = headers.get("X-Vault-Token")
        if not token:
            bearer = headers.get("Authorization") or ""
            token = bearer[len("Bearer ") :].strip() if bearer.startswith("Bearer ") else None
        body = self._parse_body(raw_body)
        request = Request(method, path, query, headers, body, token or None, params, remote_addr)
        if route is None:
            if path.startswith("sys/"):
                raise VaultError(404, f'no handler for route "{path}". route entry not found.')
            self._authorize(request, path, _method_capability(method, False))
            raise VaultError(404, f'no handler for route "{path}". route entry not found.')
        if route.capability is not None:
            acl_path, capability = route.capability(request)
            self._authorize(request, acl_path, capability)
        if method not in route.methods:
            raise VaultError(405, "unsupported operation")
        return route.handler(request)

    def _match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
        return None, {}

    @staticmethod
    def _parse_body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        if not raw.lstrip().startswith(b"{"):  # Vault reads a body that is not a JSON object as a form
            return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise VaultError(400, f"failed to parse JSON input: {error}") from None
        if not isinstance(body, dict):
            raise VaultError(400, "failed to parse JSON input: not an object")
        return body

    def _authorize(self, request: Request, acl_path: str, capability: str) -> TokenEntry:
        entry = self.tokens.get(request.token or "")
        if entry is not None and entry.expires_at is not None and self.clock.now() >= entry.expires_at:
            self.revoked_tokens[entry.token] = self.tokens.pop(entry.token)  # Vault revokes a token whose TTL is up
            entry = None
        if entry is None:
            raise VaultError(403, PERMISSION_DENIED)
        if entry.bound_cidrs and not _in_cidrs(request.remote_addr, entry.bound_cidrs):
            raise VaultError(403, PERMISSION_DENIED)
        if "root" in entry.policies:
            return entry
        merged: dict[str, set[str]] = {}
        for name in entry.policies:
            for rule_path, caps in self.policies.get(name, {}).items():
                merged.setdefault(rule_path, set()).update(caps)
        # "update+sudo": every one of them (a root-protected path needs sudo besides its own)
        if not all(allowed(merged, acl_path, wanted) for wanted in capability.split("+")):
            raise VaultError(403, ACL_DENIED)
        return entry

    # -- endpoints --------------------------------------------------------------------------

    def _install_routes(self) -> None:
        self.add_route(["GET", "HEAD"], r"sys/health", self._health, sealed_ok=True)
        self.add_route(["GET", "PUT", "POST"], r"sys/init", self._init, sealed_ok=True)
        self.add_route(["GET"], r"sys/seal-status", self._seal_status_endpoint, sealed_ok=True)
        self.add_route(["PUT", "POST"], r"sys/unseal", self._unseal, sealed_ok=True)
        self.add_route(["GET"], r"auth/token/lookup-self", self._lookup_self, capability=lambda r: (r.path, "read"))
        self.add_route(
            ["PUT", "POST"], r"auth/token/revoke-self", self._revoke_self, capability=lambda r: (r.path, "update")
        )
        self.add_route(["GET"], r"sys/auth", self._list_auth, capability=lambda r: (r.path, "read"))
        # "auth/*" is among the sys backend's root paths: enabling an auth method needs sudo
        self.add_route(["PUT", "POST"], r"sys/auth/(?P<mount>[^/]+)", self._enable_auth, capability=self._sudo)
        for prefix in (r"sys/policies/acl/", r"sys/policy/"):
            self.add_route(
                ["GET", "PUT", "POST", "DELETE"], prefix + r"(?P<name>[^/]+)", self._policy, capability=self._policy_acl
            )
        self.add_route(["GET", "PUT", "POST", "DELETE"], r"sys/generate-root/attempt", self._generate_root_attempt)
        self.add_route(["PUT", "POST"], r"sys/generate-root/update", self._generate_root_update)
        self.add_route(
            ["PUT", "POST"], r"sys/decode-token", self._decode_token, capability=lambda r: (r.path, "update")
        )
        self.add_route(["GET", "PUT", "POST"], r"secret/data/(?P<path>.+)", self._kv_data, capability=self._kv_acl)

    def _sudo(self, request: Request) -> tuple[str, str]:
        """A root-protected path: the request's own capability and sudo."""
        exists = request.params.get("mount", "").strip("/") in self.auth_mounts
        return request.path, _method_capability(request.method, exists) + "+sudo"

    def _policy_acl(self, request: Request) -> tuple[str, str]:
        exists = request.params["name"].lower() in self.policies
        return request.path, _method_capability(request.method, exists)

    def _kv_acl(self, request: Request) -> tuple[str, str]:
        exists = bool(self.kv.get(request.params["path"].strip("/")))
        return request.path, _method_capability(request.method, exists)

    def _seal_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "type": "shamir",
            "initialized": self.initialized,
            "sealed": self.sealed,
            "t": self.secret_threshold,
            "n": self.secret_shares,
            "progress": len(self._unseal_parts),
            "nonce": self._unseal_nonce,
            "version": self.version,
            "build_date": "2025-03-04T12:00:00Z",
            "migration": False,
            "recovery_seal": False,
            "storage_type": "file",
        }
        if self.initialized and not self.sealed:
            status["cluster_name"] = "vault-cluster-devstack"
            status["cluster_id"] = "6a1c3fd4-0f0e-4b8e-9a43-2f5d0e0d1c2b"
        return status

    def _seal_status_endpoint(self, request: Request) -> Response:
        return Response(200, self._seal_status())

    def _health(self, request: Request) -> Response:
        if not self.initialized:
            status = int(request.query.get("uninitcode", 501))
        elif self.sealed:
            status = int(request.query.get("sealedcode", 503))
        else:
            status = int(request.query.get("activecode", 200))
        body = {
            "initialized": self.initialized,
            "sealed": self.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(datetime.now(UTC).timestamp()),
            "version": self.version,
            "enterprise": False,
            "echo_duration_ms": 0,
            "clock_skew_ms": 0,
        }
        if self.initialized and not self.sealed:
            body["cluster_name"] = "vault-cluster-devstack"
            body["cluster_id"] = "6a1c3fd4-0f0e-4b8e-9a43-2f5d0e0d1c2b"
        return Response(status, None if request.method == "HEAD" else body)

    def _init(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(200, {"initialized": self.initialized})
        shares = request.body.get("secret_shares")
        threshold = request.body.get("secret_threshold")
        if not isinstance(shares, int) or not isinstance(threshold, int):
            raise VaultError(400, "invalid seal configuration: secret_shares and secret_threshold must be integers")
        return Response(200, self.initialize(shares, threshold).as_json())

    def _unseal(self, request: Request) -> Response:
        if not self.initialized:
            raise VaultError(400, "Vault is not initialized")
        if request.body.get("reset"):
            self._reset_unseal()
            return Response(200, self._seal_status())
        key = request.body.get("key")
        if not isinstance(key, str) or not key:
            raise VaultError(400, "'key' must be specified in request body as JSON, or 'reset' set to true")
        part = self._decode_key(key)
        if not self.sealed:
            return Response(200, self._seal_status())
        if part not in self._unseal_parts:  # a share given twice is ignored
            if not self._unseal_parts:
                self._unseal_nonce = str(uuid.uuid4())
            self._unseal_parts.append(part)
        if len(self._unseal_parts) >= self.secret_threshold:
            genuine = all(p in self.unseal_keys for p in self._unseal_parts)
            self._reset_unseal()
            if not genuine:
                raise VaultError(
                    400, "Error unsealing: failed to unseal barrier: cipher: message authentication failed"
                )
            self.sealed = False
        return Response(200, self._seal_status())

    @staticmethod
    def _decode_key(key: str) -> bytes:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
        try:
            return base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(400, "'key' must be a valid hex or base64 string") from None

    def _reset_unseal(self) -> None:
        self._unseal_parts = []
        self._unseal_nonce = ""

    def _lookup_self(self, request: Request) -> Response:
        entry = self.tokens[request.token or ""]
        left = 0 if entry.expires_at is None else max(0, int(entry.expires_at - self.clock.now()))
        expire_time = (
            None
            if entry.expires_at is None
            else datetime.fromtimestamp(entry.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )
        return Response(
            200,
            self._envelope(
                {
                    "accessor": entry.accessor,
                    "creation_time": entry.creation_time,
                    "creation_ttl": entry.ttl,
                    "display_name": "root" if "root" in entry.policies else ("approle" if entry.meta else "token"),
                    "expire_time": expire_time,
                    "id": entry.token,
                    "meta": entry.meta or None,
                    "path": entry.path,
                    "policies": sorted(entry.policies),
                    "renewable": entry.renewable,
                    "ttl": left,
                    "type": "service",
                    **({"bound_cidrs": list(entry.bound_cidrs)} if entry.bound_cidrs else {}),
                },
                mount_type="token",
            ),
        )

    def _revoke_self(self, request: Request) -> Response:
        """auth/token/revoke-self: the token (and, for a root token, nothing else) stops working."""
        token = request.token or ""
        self.revoked_tokens[token] = self.tokens.pop(token)
        self.revoked_by_request.add(token)
        return Response(204)

    def _list_auth(self, request: Request) -> Response:
        mounts = {
            f"{path}/": {"type": kind, "description": "", "accessor": f"auth_{kind}_{abs(hash(path)) % 10**8:08d}"}
            for path, kind in self.auth_mounts.items()
        }
        return Response(200, {**mounts, **self._envelope(mounts, mount_type="system")})

    def _enable_auth(self, request: Request) -> Response:
        mount = request.params["mount"].strip("/")
        kind = str(request.body.get("type") or "")
        if not kind:
            raise VaultError(400, "backend type must be specified as a string")
        if mount in self.auth_mounts:
            raise VaultError(400, f"path is already in use at {mount}/")
        if kind != "approle":
            raise VaultError(400, f'the fake serves only approle auth methods, not "{kind}"')
        self.enable_approle(mount)
        return Response(204)

    def _policy(self, request: Request) -> Response:
        name = request.params["name"].lower()
        if request.method == "GET":
            if name not in self.policies:
                raise VaultError(404)
            text = self.policy_texts.get(name, json.dumps({"path": self.policies[name]}))
            return Response(200, self._envelope({"name": name, "policy": text, "rules": text}, mount_type="system"))
        if request.method == "DELETE":
            if name in ("default", "root"):
                raise VaultError(400, f'cannot delete "{name}" policy')
            self.policies.pop(name, None)
            self.policy_texts.pop(name, None)
            return Response(204)
        if name == "root":
            raise VaultError(400, "cannot update root policy")
        text = request.body.get("policy", request.body.get("rules"))
        if not isinstance(text, str) or not text.strip():
            raise VaultError(400, "'policy' parameter not supplied or empty")
        self.load_policy_hcl(name, text)
        return Response(204)

    # -- root token generation (http/sys_generate_root.go, vault/generate_root.go) -----------

    OTP_LENGTH: ClassVar[int] = 28  # TokenLength 24 + the "hvs." prefix

    def _generate_root_status(self, otp: str = "") -> dict[str, Any]:
        return {
            "started": bool(self.generate_root_nonce),
            "nonce": self.generate_root_nonce,
            "progress": len(self._generate_root_parts),
            "required": self.secret_threshold,
            "complete": False,
            "encoded_token": "",
            "encoded_root_token": "",
            "pgp_fingerprint": "",
            "otp": otp,
            "otp_length": self.OTP_LENGTH,
        }

    def _cancel_generate_root(self) -> None:
        self.generate_root_nonce = ""
        self.generate_root_otp = ""
        self._generate_root_parts = []

    def _generate_root_attempt(self, request: Request) -> Response:
        if not self.initialized:
            raise VaultError(400, "Vault is not initialized")
        if request.method == "GET":
            return Response(200, self._generate_root_status())
        if request.method == "DELETE":
            self._cancel_generate_root()
            return Response(204)
        if request.body.get("pgp_key"):
            raise VaultError(400, "the fake does not encrypt root tokens with PGP: leave pgp_key out")
        if self.generate_root_nonce:
            raise VaultError(400, "root generation already in progress")
        otp = str(request.body.get("otp") or "")
        generated = not otp
        if generated:
            otp = _random_id(self.OTP_LENGTH)
        elif len(otp) != self.OTP_LENGTH:
            raise VaultError(400, f"OTP string is wrong length: expected {self.OTP_LENGTH}")
        self.generate_root_nonce = str(uuid.uuid4())
        self.generate_root_otp = otp
        self._generate_root_parts = []
        return Response(200, self._generate_root_status(otp if generated else ""))

    def _generate_root_update(self, request: Request) -> Response:
        key = str(request.body.get("key") or "").strip()
        nonce = str(request.body.get("nonce") or "")
        if not key:
            raise VaultError(400, "'key' must be specified in request body as JSON")
        if not self.generate_root_nonce:
            raise VaultError(400, "no root generation in progress")
        if nonce != self.generate_root_nonce:
            raise VaultError(400, f"incorrect nonce supplied; nonce for this root generation operation is {nonce}")
        part = self._decode_key(key)
        if part in self._generate_root_parts:
            raise VaultError(400, "given key has already been provided during this generation operation")
        self._generate_root_parts.append(part)
        status = self._generate_root_status()
        if len(self._generate_root_parts) < self.secret_threshold:
            return Response(200, status)
        genuine = all(p in self.unseal_keys for p in self._generate_root_parts)
        otp = self.generate_root_otp
        self._cancel_generate_root()  # the attempt ends at the threshold, whatever the outcome
        if not genuine:
            raise VaultError(400, "unable to authenticate: cipher: message authentication failed")
        token = "hvs." + _random_id(self.OTP_LENGTH - 4)
        self.tokens[token] = TokenEntry(token, ("root",))
        encoded = encode_root_token(token, otp)
        return Response(200, {**status, "complete": True, "encoded_token": encoded, "encoded_root_token": encoded})

    def _decode_token(self, request: Request) -> Response:
        encoded = str(request.body.get("encoded_token") or "")
        otp = str(request.body.get("otp") or "")
        if not encoded or not otp:
            raise VaultError(400, "provided 'encoded_token' or 'otp' is empty")
        return Response(200, self._envelope({"token": decode_root_token(encoded, otp)}, mount_type="system"))

    # -- AppRole endpoints ------------------------------------------------------------------

    def _approle_login(self, request: Request, mount: str = "approle") -> Response:
        """builtin/credential/approle/path_login.go, in its order of checks."""
        role_id = str(request.body.get("role_id") or "").strip()
        if not role_id:
            raise VaultError(400, "missing role_id")
        role = next((r for r in self.approles.values() if r.role_id == role_id and r.mount == mount), None)
        if role is None:
            raise VaultError(400, INVALID_ROLE_OR_SECRET_ID)
        secret_id = str(request.body.get("secret_id") or "").strip()
        if not secret_id:
            raise VaultError(400, "missing secret_id")
        address = request.remote_addr
        key = (role.name, secret_id)
        entry = self.secret_ids.get(key)
        if entry is not None and entry.expires_at is not None and self.clock.now() >= entry.expires_at:
            # Vault's tidy deletes an expired secret ID (at most a minute late); here at once
            del self.secret_ids[key]
            entry = None
        if entry is None:
            raise VaultError(400, INVALID_ROLE_OR_SECRET_ID)
        if entry.num_uses == 0:
            if entry.cidr_list and not _in_cidrs(address, entry.cidr_list):
                raise VaultError(
                    400, f'source address "{address}" unauthorized through CIDR restrictions on the secret ID'
                )
        else:
            # a use is spent before the address is checked, as in Vault
            if entry.num_uses == 1:
                del self.secret_ids[key]
            else:
                entry.num_uses -= 1
            if entry.cidr_list and not _in_cidrs(address, entry.cidr_list):
                raise VaultError(
                    400,
                    f'source address "{address}" unauthorized by CIDR restrictions on the secret ID: {_GO_NIL_ERROR}',
                )
        if role.secret_id_bound_cidrs and not _in_cidrs(address, role.secret_id_bound_cidrs):
            raise VaultError(
                400, f'source address "{address}" unauthorized by CIDR restrictions on the role: {_GO_NIL_ERROR}'
            )
        policies = tuple(sorted({*(() if role.no_default_policy else ("default",)), *role.policies}))
        ttl = role.token_ttl or SYSTEM_MAX_TTL
        ttl = min(ttl, role.token_max_ttl or SYSTEM_MAX_TTL)
        token = self._issue_token(
            policies,
            ttl=ttl,
            bound_cidrs=entry.token_bound_cidrs or role.token_bound_cidrs,
            renewable=True,
            meta={"role_name": role.name},
            path=f"auth/{mount}/login",
        )
        auth = {
            "client_token": token.token,
            "accessor": token.accessor,
            "policies": list(policies),
            "token_policies": list(policies),
            "metadata": {"role_name": role.name},
            "lease_duration": ttl,
            "renewable": True,
            "entity_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "approle/" + role.role_id)),
            "token_type": "service",
            "orphan": True,
            "mfa_requirement": None,
            "num_uses": 0,
        }
        return Response(200, self._envelope(None, mount_type="approle", auth=auth))

    def _approle_role(self, request: Request, mount: str) -> AppRole:
        role = self._role_of(mount, request)
        if role is None:
            raise VaultError(400, f'role "{request.params["role"]}" does not exist')
        return role

    def _approle_write_role(self, request: Request, mount: str) -> Response:
        """``auth/<mount>/role/<name>`` (path_role.go): create or update; unset fields keep theirs."""
        body = request.body
        previous = self._role_of(mount, request)

        def number(key: str, default: int) -> int:
            value = body.get(key)
            if value is None:
                return default
            try:
                return int(value)
            except (TypeError, ValueError):
                raise VaultError(400, f'error converting input for field "{key}": not a number of seconds') from None

        def strings(key: str, default: Iterable[str]) -> list[str]:
            value = body.get(key)
            if value is None:
                return list(default)
            items = value.split(",") if isinstance(value, str) else value
            return [str(v).strip() for v in items if str(v).strip()]

        self.create_role(
            request.params["role"],
            strings("token_policies", previous.policies if previous else ()),
            token_ttl=number("token_ttl", previous.token_ttl if previous else 0),
            token_max_ttl=number("token_max_ttl", previous.token_max_ttl if previous else 0),
            secret_id_ttl=number("secret_id_ttl", previous.secret_id_ttl if previous else 0),
            secret_id_num_uses=number("secret_id_num_uses", previous.secret_id_num_uses if previous else 0),
            secret_id_bound_cidrs=strings("secret_id_bound_cidrs", previous.secret_id_bound_cidrs if previous else ()),
            token_bound_cidrs=strings("token_bound_cidrs", previous.token_bound_cidrs if previous else ()),
            mount=mount,
            no_default_policy=bool(
                body.get("token_no_default_policy", previous.no_default_policy if previous else False)
            ),
        )
        return Response(204)

    def _approle_role_id(self, request: Request, mount: str = "approle") -> Response:
        role = self._role_of(mount, request)
        if role is None:
            raise VaultError(404)
        return Response(200, self._envelope({"role_id": role.role_id}, mount_type="approle"))

    def _approle_secret_ids(self, request: Request, mount: str = "approle") -> Response:
        if request.method != "LIST":
            return self._approle_new_secret_id(request, mount)
        role = self._approle_role(request, mount)
        accessors = sorted(e.accessor for (name, _), e in self.secret_ids.items() if name == role.name)
        if not accessors:  # Vault answers an empty list with 404 and no error text
            return Response(404, {"errors": []})
        return Response(200, self._envelope({"keys": accessors}, mount_type="approle"))

    def _approle_lookup_secret_id(self, request: Request, mount: str = "approle") -> Response:
        role = self._approle_role(request, mount)
        secret_id = str(request.body.get("secret_id") or "").strip()
        if not secret_id:
            raise VaultError(400, "missing secret_id")
        entry = self.secret_ids.get((role.name, secret_id))
        if entry is None:  # path_role.go returns no response: 204
            return Response(204)
        data = {
            "secret_id_accessor": entry.accessor,
            "secret_id_num_uses": entry.num_uses,
            "cidr_list": list(entry.cidr_list),
            "token_bound_cidrs": list(entry.token_bound_cidrs),
        }
        return Response(200, self._envelope(data, mount_type="approle"))

    def _approle_destroy_by_accessor(self, request: Request, mount: str = "approle") -> Response:
        role = self._approle_role(request, mount)
        accessor = str(request.body.get("secret_id_accessor") or "").strip()
        if not accessor:
            raise VaultError(400, "missing secret_id_accessor")
        key = next((k for k, e in self.secret_ids.items() if k[0] == role.name and e.accessor == accessor), None)
        if key is None:
            missing = f'failed to find accessor entry for secret_id_accessor: "{accessor}"'
            raise VaultError(500, f"1 error occurred:\n\t* {missing}\n\n")
        del self.secret_ids[key]
        return Response(204)

    def _approle_new_secret_id(self, request: Request, mount: str = "approle") -> Response:
        role = self._approle_role(request, mount)
        cidrs = request.body.get("cidr_list") or []
        token_cidrs = request.body.get("token_bound_cidrs") or []
        if isinstance(cidrs, str):
            cidrs = [c.strip() for c in cidrs.split(",") if c.strip()]
        if isinstance(token_cidrs, str):
            token_cidrs = [c.strip() for c in token_cidrs.split(",") if c.strip()]
        ttl = request.body.get("ttl")
        num_uses = request.body.get("num_uses")
        secret_id, entry = self._new_secret_id(
            role.name,
            int(ttl) if ttl is not None else None,
            [str(c) for c in cidrs],
            int(num_uses) if num_uses is not None else None,
            [str(c) for c in token_cidrs],
        )
        left = 0 if entry.expires_at is None else round(entry.expires_at - self.clock.now())
        data = {
            "secret_id": secret_id,
            "secret_id_accessor": entry.accessor,
            "secret_id_ttl": left,
            "secret_id_num_uses": entry.num_uses,
        }
        return Response(200, self._envelope(data, mount_type="approle"))

    def _kv_data(self, request: Request) -> Response:
        path = request.params["path"].strip("/")
        versions = self.kv.get(path)
        if request.method == "GET":
            if not versions:
                raise VaultError(404)
            wanted = int(request.query.get("version") or 0) or len(versions)
            if not 1 <= wanted <= len(versions):
                raise VaultError(404)
            chosen = versions[wanted - 1]
            return Response(200, self._envelope({"data": dict(chosen.data), "metadata": self._kv_meta(chosen)}))
        data = request.body.get("data")
        if not isinstance(data, dict):
            raise VaultError(400, "no data provided")
        version = self.put_secret(path, data)
        return Response(200, self._envelope(self._kv_meta(self.kv[path][version - 1])))

    @staticmethod
    def _kv_meta(version: KvVersion) -> dict[str, Any]:
        return {
            "created_time": version.created_time,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": version.version,
        }

    @staticmethod
    def _envelope(data: Any, mount_type: str = "kv", auth: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": auth,
            "mount_type": mount_type,
        }
