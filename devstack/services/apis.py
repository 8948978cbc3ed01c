"""The five reference APIs (Python, Go, Node, Rust), clients of every data service: the catalog
entries, their health probes, and their TLS settings as servers and as clients."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from devstack.model import (
    APP_DIR,
    PLAIN_BESIDE_TLS,
    REF,
    SECRETS_DIR,
    TLS_PORT,
    Credentials,
    Flow,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    ServerTls,
    Service,
    Tier,
    TlsSupport,
    account_user,
    http_probe,
)
from devstack.phases import TlsMode
from devstack.services.rabbitmq import RABBITMQ
from devstack.services.redis import NODES
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR, with_probe

_DATA_CLIENT_FLOWS = (
    VAULT_FLOW,
    Flow("postgres", "postgres"),
    Flow("mysql", "mysql"),
    Flow("mongodb", "mongodb"),
    # A cluster client is redirected to whichever node holds a key: it talks to all three.
    Flow("redis-1", "redis"),
    Flow("redis-2", "redis"),
    Flow("redis-3", "redis"),
    # ... and to the replicas (redisReplicas), one of which may have taken over a master's slots
    Flow("redis-4", "redis"),
    Flow("redis-5", "redis"),
    Flow("redis-6", "redis"),
    Flow("rabbitmq", "amqp"),
)


# runtime image -> (the app's source in apps/, how the image runs it): standard library only,
# so nothing is fetched at start.
_API_APPS = {
    "python": ("api.py", ("python", f"{APP_DIR}/api.py")),
    "golang": ("main.go", ("go", "run", f"{APP_DIR}/main.go")),
    "node": ("server.js", ("node", f"{APP_DIR}/server.js")),
    "rust": ("main.rs", ("sh", "-c", f"rustc -O -o /tmp/api {APP_DIR}/main.rs && exec /tmp/api")),
}


def _api_env(name: str, data: bool) -> Mapping[str, str]:
    """Where each data service is, which user the API is there, and the file with its password."""
    env = {"SERVICE_NAME": name, "HTTP_PORT": "8000", "HTTPS_PORT": "8443"}
    if data:
        for system, host, port in (
            ("postgres", "postgres", 5432),
            ("mysql", "mysql", 3306),
            ("mongodb", "mongodb", 27017),
            ("redis", "redis-1", 6379),
            ("rabbitmq", "rabbitmq", 5672),
        ):
            prefix = system.upper()
            env |= {
                f"{prefix}_HOST": host,
                f"{prefix}_PORT": str(port),
                f"{prefix}_USER": account_user(name),
                f"{prefix}_DATABASE": account_user(name),
                f"{prefix}_PASSWORD_FILE": f"{SECRETS_DIR}/{system}_password",
            }
    return MappingProxyType(env)


def api_probe(runtime: str, url: str, ca_file: str | None = None) -> tuple[str, ...]:
    """A health probe with what the runtime image ships: python and node have no wget."""
    if runtime == "python":
        context = f"ssl.create_default_context(cafile='{ca_file}')" if ca_file else "None"
        code = f"import ssl, urllib.request; urllib.request.urlopen('{url}', timeout=5, context={context})"
        return ("CMD", "python", "-c", code)
    if runtime == "node":
        env = f"NODE_EXTRA_CA_CERTS={ca_file} " if ca_file else ""
        script = f"fetch('{url}').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
        return ("CMD-SHELL", f'{env}node -e "{script}"')
    # Alpine's busybox wget verifies an https:// URL against /etc/ssl/cert.pem, where the stack's
    # CA is put for these images from dual mode on (Service.system_ca_bundle).
    return http_probe(url)


# Once TLS is required these backends' plaintext ports are closed: clients use the TLS ones.
TLS_CLIENT_PORTS = {
    "REDIS_PORT": str(NODES[0].port("tls").container),
    "RABBITMQ_PORT": str(RABBITMQ.port("amqps").container),
}


def api_env(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> dict[str, str]:
    """The reference APIs serve HTTPS on 8443 beside HTTP (dual), or alone (required); as clients
    they are told the CA to verify their backends with, and the TLS ports once required."""
    env = {"TLS_MODE": mode.value, "TLS_CERT_FILE": f"{tls_dir}/{CERT_FILE}", "TLS_KEY_FILE": f"{tls_dir}/{KEY_FILE}"}
    if "REDIS_PORT" in service.env:
        env["TLS_CA_FILE"] = f"{tls_dir}/{CA_FILE}"
        if mode is TlsMode.REQUIRED:
            env |= TLS_CLIENT_PORTS
    return env


def api_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    if mode is not TlsMode.REQUIRED:
        return None
    url = f"https://localhost:{service.port('https').container}/health"
    return with_probe(service, api_probe(service.image, url, f"{tls_dir}/{CA_FILE}"))


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is TlsMode.OFF:
        return ServerTls()
    return ServerTls(env=api_env(service, mode), healthcheck=api_healthcheck(service, mode))


# The language images run as root by default but need nothing of it: nobody runs the apps. Go's
# build cache and module folder move to /tmp (nobody has no home); rustc already writes there.
_GO_CACHES = MappingProxyType({"GOCACHE": "/tmp/go-build", "GOPATH": "/tmp/go"})


def _hardening(image: str) -> Hardening:
    return Hardening(user="65534:65534", env=_GO_CACHES if image == "golang" else MappingProxyType({}))


def _api(name: str, image: str, tag: str, host_id: int, *, index: int, memory_mb: int, data: bool = True) -> Service:
    http, https = 8000 + index, 8443 + index
    tls = image != "rust"  # Rust's standard library has no TLS: HTTP in every mode
    return Service(
        name=name,
        image=image,
        tag=tag,
        tier=Tier.APP,
        host_id=host_id,
        ports=(Port("http", 8000, http, PLAIN_BESIDE_TLS), Port("https", 8443, https, TLS_PORT))
        if tls
        else (Port("http", 8000, http),),
        healthcheck=Healthcheck(api_probe(image, "http://127.0.0.1:8000/health")),
        limits=Limits(1, memory_mb),  # the floor: go and rustc compile at start
        profiles=REF,
        hardening=_hardening(image),
        depends_on=("vault", "postgres", "mysql") if data else ("vault",),
        flows=_DATA_CLIENT_FLOWS if data else (VAULT_FLOW,),
        env=_api_env(name, data),
        app=_API_APPS[image][0],
        command=_API_APPS[image][1],
        credentials=Credentials(entrypoint=_API_APPS[image][1]) if data else None,
        system_ca_bundle=image in ("golang", "node"),
        tls=TlsSupport(owner=0, settings=_tls) if tls else None,
        # apps/: each app's /metrics serves devstack_api_up; over HTTPS on 8443 once TLS is required.
        metrics=Metrics("http", required_port="https" if tls else None, exported=("devstack_api_up",)),
    )


APIS: tuple[Service, ...] = (
    _api("reference-api", "python", "3.11.11-slim-bookworm", 100, index=0, memory_mb=64),
    _api("api-first", "python", "3.11.11-slim-bookworm", 104, index=1, memory_mb=64),
    _api("golang-api", "golang", "1.24.1-alpine3.21", 105, index=2, memory_mb=320),
    _api("nodejs-api", "node", "18.20.8-alpine3.21", 106, index=3, memory_mb=96),
    _api("rust-api", "rust", "1.83.0-alpine3.21", 107, index=4, memory_mb=320, data=False),
)
