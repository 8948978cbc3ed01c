"""An in-process fake of the Vault HTTP API, for testing the scripts that talk to Vault.

Stdlib only; it binds to 127.0.0.1 on an ephemeral port. What it serves, with Vault's status
codes and JSON shapes:

- ``sys/health``, ``sys/init``, ``sys/seal-status``, ``sys/unseal`` (Shamir: ``secret_shares``
  keys of 33 random bytes, ``secret_threshold`` of them unseal; a share that is not one of the
  keys is only detected when the threshold is reached, as in Vault, and resets the progress);
- ``auth/token/lookup-self``;
- a KV version 2 engine mounted at ``secret/`` (``secret/data/<path>``: read, create, update).

Every other path answers as Vault does for a path with no handler. Requests to anything but
``sys/`` are refused with 503 while Vault is sealed (or not initialised), then need a token
(``X-Vault-Token`` or ``Authorization: Bearer``) whose policies grant the capability the request
needs. Policies are ``{path: capabilities}`` dicts with Vault's matching rules: an exact path
beats every glob, ``*`` at the end is a prefix glob, ``+`` matches one path segment, the most
specific glob wins (Vault's priority rules), and ``deny`` on the chosen path wins over any grant.

More endpoints (AppRole's ``auth/approle/login``, for one) plug in with :meth:`FakeVault.add_route`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def allowed(rules: Mapping[str, Iterable[str]], path: str, capability: str) -> bool:
    """Whether merged policy ``rules`` (path -> capabilities) grant ``capability`` on ``path``."""
    exact = {p: set(c) for p, c in rules.items() if "*" not in p and "+" not in p.split("/")}
    if path in exact:
        chosen = exact[path]
    else:
        globs = [p for p in rules if p not in exact and _glob_regex(p).fullmatch(path)]
        if not globs:
            return False
        chosen = set(rules[max(globs, key=_glob_priority)])
    return "deny" not in chosen and capability in chosen


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        assert isinstance(self.server, _Server)
        status, payload = self.server.vault.handle(self.command, self.path, self.headers, raw)
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

    def __init__(self, vault: FakeVault, port: int) -> None:
        super().__init__(("127.0.0.1", port), _HttpHandler)
        self.vault = vault


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    user_agent: str


class FakeVault:
    """A Vault server on 127.0.0.1:<ephemeral>. Use as a context manager, or start()/stop()."""

    version: ClassVar[str] = VERSION

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port  # 0: an ephemeral port
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
        self.policies: dict[str, dict[str, list[str]]] = {"default": dict(DEFAULT_POLICY)}
        self.kv: dict[str, list[KvVersion]] = {}
        # volatile state (lost on seal)
        self._unseal_parts: list[bytes] = []
        self._unseal_nonce = ""
        # bookkeeping for assertions
        self.counts: Counter[tuple[str, str]] = Counter()
        self.log: list[RequestRecord] = []
        self.overrides: dict[str, tuple[int, bytes]] = {}
        self._install_routes()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeVault:
        if self._server is None:
            self._server = _Server(self, self._requested_port)
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
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def create_token(self, policies: Iterable[str] = (), *, no_default_policy: bool = False) -> str:
        with self._lock:
            wanted: list[str] = [] if no_default_policy else ["default"]
            names = tuple(dict.fromkeys([*wanted, *policies]))
            token = "hvs." + _random_id(24)
            self.tokens[token] = TokenEntry(token, names)
            return token

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

    def handle(self, method: str, raw_path: str, headers: Message, raw_body: bytes) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        path = url.path[len("/v1/") :] if url.path.startswith("/v1/") else None
        with self._lock:
            payload: Any
            if path is None:
                status, payload = 404, None
            elif path in self.overrides:
                status, payload = self.overrides[path]
            else:
                try:
                    response = self._dispatch(method.upper(), path, dict(parse_qsl(url.query)), headers, raw_body)
                    status, payload = response.status, response.body
                except VaultError as error:
                    status, payload = error.status, {"errors": error.errors}
            self.counts[(method.upper(), path or url.path)] += 1
            agent = headers.get("User-Agent") or ""
            self.log.append(RequestRecord(method.upper(), path or url.path, status, agent))
            return status, payload

    def _dispatch(self, method: str, path: str, query: dict[str, str], headers: Message, raw_body: bytes) -> Response:
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
        request = Request(method, path, query, headers, body, token or None, params)
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
        try:
            body = json.loads(raw)
        except ValueError as error:
            raise VaultError(400, f"failed to parse JSON input: {error}") from None
        if not isinstance(body, dict):
            raise VaultError(400, "failed to parse JSON input: not an object")
        return body

    def _authorize(self, request: Request, acl_path: str, capability: str) -> TokenEntry:
        entry = self.tokens.get(request.token or "")
        if entry is None:
            raise VaultError(403, PERMISSION_DENIED)
        if "root" in entry.policies:
            return entry
        merged: dict[str, set[str]] = {}
        for name in entry.policies:
            for rule_path, caps in self.policies.get(name, {}).items():
                merged.setdefault(rule_path, set()).update(caps)
        if not allowed(merged, acl_path, capability):
            raise VaultError(403, ACL_DENIED)
        return entry

    # -- endpoints --------------------------------------------------------------------------

    def _install_routes(self) -> None:
        self.add_route(["GET", "HEAD"], r"sys/health", self._health, sealed_ok=True)
        self.add_route(["GET", "PUT", "POST"], r"sys/init", self._init, sealed_ok=True)
        self.add_route(["GET"], r"sys/seal-status", self._seal_status_endpoint, sealed_ok=True)
        self.add_route(["PUT", "POST"], r"sys/unseal", self._unseal, sealed_ok=True)
        self.add_route(["GET"], r"auth/token/lookup-self", self._lookup_self, capability=lambda r: (r.path, "read"))
        self.add_route(["GET", "PUT", "POST"], r"secret/data/(?P<path>.+)", self._kv_data, capability=self._kv_acl)

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
        return Response(
            200,
            self._envelope(
                {
                    "accessor": entry.accessor,
                    "creation_time": entry.creation_time,
                    "display_name": "root" if "root" in entry.policies else "token",
                    "id": entry.token,
                    "policies": sorted(entry.policies),
                    "type": "service",
                },
                mount_type="token",
            ),
        )

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
    def _envelope(data: Any, mount_type: str = "kv") -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
            "mount_type": mount_type,
        }
