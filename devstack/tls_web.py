"""TLS for the servers with a single HTTP listener: Forgejo, Prometheus, Grafana, Loki and the
Redis exporters. One listener cannot offer TLS beside plaintext, so off and dual leave them on
plain HTTP and required moves them to HTTPS on the same port (TLS 1.2 at least, TLS 1.2 suites
limited to forward-secret AEAD where the server lets us choose), with a health probe that still
works. Forgejo is also a PostgreSQL client: from dual on it connects with TLS and verifies the
server against the CA.

Every flag, key and variable name below was read in the server's own source, at the pinned tag
where the repository could be fetched; each function names what it was checked against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from devstack.model import Healthcheck, Service
from devstack.phases import TlsMode
from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR
from devstack.tls_server import ServerTls

# TLS 1.2 suites by Go's names (crypto/tls CipherSuiteName): ECDHE key exchange with AES-GCM or
# ChaCha20-Poly1305 only, like tls_configs.CIPHERS. Our leaves are ECDSA P-256, so the ECDSA
# suites are the ones used; the RSA ones keep an RSA leaf working. TLS 1.3 suites are not
# configurable in Go and are all AEAD.
GO_CIPHER_SUITES: tuple[str, ...] = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)

PROMETHEUS_WEB_CONFIG = "prometheus-web.yml"
PROMTOOL_HTTP_CONFIG = "promtool-http.yml"

# prom/prometheus:v2.55.1's CMD (prometheus/prometheus@v2.55.1:Dockerfile); ENTRYPOINT is
# /bin/prometheus, so replacing the CMD means restating these.
PROMETHEUS_DEFAULT_ARGS: tuple[str, ...] = (
    "--config.file=/etc/prometheus/prometheus.yml",
    "--storage.tsdb.path=/prometheus",
    "--web.console.libraries=/usr/share/prometheus/console_libraries",
    "--web.console.templates=/usr/share/prometheus/consoles",
)

# grafana/loki:3.3.2's CMD (grafana/loki@v3.3.2:cmd/loki/Dockerfile, the file the release
# workflow builds); ENTRYPOINT is /usr/bin/loki.
LOKI_DEFAULT_ARGS: tuple[str, ...] = ("-config.file=/etc/loki/local-config.yaml",)


def _files(tls_dir: str) -> tuple[str, str, str]:
    return f"{tls_dir}/{CERT_FILE}", f"{tls_dir}/{KEY_FILE}", f"{tls_dir}/{CA_FILE}"


def _probe(service: Service, test: tuple[str, ...]) -> Healthcheck:
    return dataclasses.replace(service.healthcheck, test=test)


def _curl_probe(ca: str, url: str) -> tuple[str, ...]:
    """The images that ship curl verify their own certificate against the CA."""
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", "--cacert", ca, url)


def _url(service: Service, port: str, path: str) -> str:
    return f"https://localhost:{service.port(port).container}{path}"


def prometheus_web_config(tls_dir: str = TLS_DIR) -> str:
    """The --web.config.file for Prometheus's HTTPS listener. Keys: prometheus/exporter-toolkit
    @v0.12.0 (the version prometheus v2.55.1 requires in go.mod):web/tls_config.go, read with
    yaml.UnmarshalStrict; min_version takes TLS10..TLS13, cipher_suites Go's suite names."""
    cert, key, _ = _files(tls_dir)
    suites = "".join(f"    - {suite}\n" for suite in GO_CIPHER_SUITES)
    return (
        "# devstack, TLS required: Prometheus serves HTTPS only.\n"
        "tls_server_config:\n"
        f"  cert_file: {cert}\n"
        f"  key_file: {key}\n"
        "  min_version: TLS12\n"
        "  cipher_suites:\n"
        f"{suites}"
    )


def promtool_http_config(tls_dir: str = TLS_DIR) -> str:
    """promtool's client config for the health probe: trust the platform's CA. Keys:
    prometheus/common@v0.59.1:config/http_config.go (HTTPClientConfig.tls_config.ca_file)."""
    return (
        "# devstack: promtool's health probe verifies Prometheus against the platform CA.\n"
        "tls_config:\n"
        f"  ca_file: {tls_dir}/{CA_FILE}\n"
        "  min_version: TLS12\n"
    )


PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"


def prometheus_config(port: int, tls_dir: str = TLS_DIR) -> str:
    """The image's own config scrapes itself over http://, which stops working once Prometheus
    serves HTTPS only: the same self-scrape, over HTTPS, verified against the CA."""
    return (
        "# devstack, TLS required: Prometheus scrapes itself over HTTPS, verified by the CA.\n"
        "global:\n"
        "  scrape_interval: 15s\n"
        "  evaluation_interval: 15s\n"
        "scrape_configs:\n"
        "  - job_name: prometheus\n"
        "    scheme: https\n"
        "    tls_config:\n"
        f"      ca_file: {tls_dir}/{CA_FILE}\n"
        "      min_version: TLS12\n"
        "    static_configs:\n"
        f"      - targets: ['localhost:{port}']\n"
    )


def prometheus_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """--web.config.file (prometheus@v2.55.1:cmd/prometheus/main.go) on the image's restated
    CMD. The probe is the image's own promtool: `check healthy` takes --http.config.file and
    --url (prometheus@v2.55.1:cmd/promtool/main.go), so it verifies the certificate, which the
    image's busybox wget cannot."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    web_config = f"{tls_dir}/{PROMETHEUS_WEB_CONFIG}"
    http_config = f"{tls_dir}/{PROMTOOL_HTTP_CONFIG}"
    probe = (
        "CMD",
        "/bin/promtool",
        "check",
        "healthy",
        f"--http.config.file={http_config}",
        f"--url={_url(service, 'http', '')}",
    )
    return ServerTls(
        command=(*PROMETHEUS_DEFAULT_ARGS, f"--web.config.file={web_config}"),
        files={
            web_config: prometheus_web_config(tls_dir),
            http_config: promtool_http_config(tls_dir),
            PROMETHEUS_CONFIG: prometheus_config(service.port("http").container, tls_dir),
        },
        healthcheck=_probe(service, probe),
    )


# Grafana picks its TLS 1.2 suites from the protocol (pkg/api/http_server.go getDefaultCiphers):
# `https` still allows TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA (and static-RSA suites), `h2` only
# ECDHE with AES-GCM or ChaCha20-Poly1305. h2 also serves HTTP/1.1 (ALPN h2, http/1.1).
GRAFANA_PROTOCOL = "h2"


def grafana_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """[server] protocol, cert_file, cert_key, min_tls_version (grafana/grafana
    pkg/setting/setting.go readServerSettings, min_tls_version TLS1.2 or TLS1.3; GF_<SECTION>_<KEY>
    overrides). Checked in grafana revisions from before and after 11.4, not at the v11.4.0 tag,
    whose repository was too large to fetch here. With protocol h2 the default root_url would
    read h2://…, so it is stated: the default with https."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, ca = _files(tls_dir)
    port = service.port("http").container
    env = {
        "GF_SERVER_PROTOCOL": GRAFANA_PROTOCOL,
        "GF_SERVER_CERT_FILE": cert,
        "GF_SERVER_CERT_KEY": key,
        "GF_SERVER_MIN_TLS_VERSION": "TLS1.2",
        "GF_SERVER_ROOT_URL": f"https://localhost:{port}/",
    }
    probe = _curl_probe(ca, _url(service, "http", "/api/health"))
    return ServerTls(env=env, healthcheck=_probe(service, probe))


def loki_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """HTTP TLS flags of grafana/dskit@53283a0f6b41 (the version loki v3.3.2 requires):
    server/server.go -server.http-tls-cert-path, -server.http-tls-key-path,
    -server.tls-min-version (VersionTLS12), -server.tls-cipher-suites (Go names,
    server/tls_config.go); command-line flags override the config file (loki@v3.3.2:
    pkg/util/cfg/dynamic.go). gRPC (9095, not published) stays as the config file has it.

    The image is distroless with busybox, whose wget cannot verify a certificate: the probe is
    a liveness check over TLS only (it sends no secret)."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, _ = _files(tls_dir)
    command = (
        *LOKI_DEFAULT_ARGS,
        f"-server.http-tls-cert-path={cert}",
        f"-server.http-tls-key-path={key}",
        "-server.tls-min-version=VersionTLS12",
        f"-server.tls-cipher-suites={','.join(GO_CIPHER_SUITES)}",
    )
    url = _url(service, "http", "/ready")
    probe = ("CMD-SHELL", f"wget -q --no-check-certificate -O /dev/null {url} || exit 1")
    return ServerTls(command=command, healthcheck=_probe(service, probe))


def redis_exporter_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """The exporter's own web listener (not its Redis connection): oliver006/redis_exporter
    @v1.67.0:main.go REDIS_EXPORTER_TLS_SERVER_CERT_FILE, _KEY_FILE, _MIN_VERSION (values
    TLS1.0..TLS1.3, exporter/tls.go). It has no cipher-suite setting: Go's defaults apply.

    Alpine's busybox wget hands TLS to ssl_client, which verifies against /etc/ssl/cert.pem
    (where the platform puts the CA for this image), so the probe verifies."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    cert, key, _ = _files(tls_dir)
    env = {
        "REDIS_EXPORTER_TLS_SERVER_CERT_FILE": cert,
        "REDIS_EXPORTER_TLS_SERVER_KEY_FILE": key,
        "REDIS_EXPORTER_TLS_SERVER_MIN_VERSION": "TLS1.2",
    }
    probe = ("CMD-SHELL", f"wget -q -O /dev/null {_url(service, 'metrics', '/health')} || exit 1")
    return ServerTls(env=env, healthcheck=_probe(service, probe))


def forgejo_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """Forgejo 1.21.11 (the v1.21/forgejo branch at its v1.21.11-0 merge 82d1eeb47e, Gitea 1.21):
    modules/setting/server.go [server] PROTOCOL, CERT_FILE, KEY_FILE, SSL_MIN_VERSION,
    SSL_CIPHER_SUITES (names as in cmd/web_https.go), ROOT_URL (default
    PROTOCOL://DOMAIN:HTTP_PORT/); modules/setting/database.go [database] SSL_MODE, passed to
    lib/pq v1.10.9 as sslmode (disable, require, verify-ca, verify-full); pq reads the CA from
    PGSSLROOTCERT (conn.go parseEnviron). Host `postgres` is in PostgreSQL's leaf names.

    The image's setup writes GITEA__section__KEY variables into app.ini on the data volume
    (environment-to-ini, modules/setting/config_env.go), and a key written once stays: every
    mode, off included, states the keys it depends on, so a rollback really returns to plain
    HTTP and a plaintext database."""
    cert, key, ca = _files(tls_dir)
    port = service.port("http").container
    required = mode is TlsMode.REQUIRED
    env: dict[str, str] = {
        "GITEA__server__PROTOCOL": "https" if required else "http",
        "GITEA__server__ROOT_URL": f"{'https' if required else 'http'}://localhost:{port}/",
        "GITEA__database__SSL_MODE": "disable" if mode is TlsMode.OFF else "verify-full",
    }
    if mode is not TlsMode.OFF:
        env["PGSSLROOTCERT"] = ca  # read by every pq connection, the `forgejo admin` CLI's too
    if not required:
        return ServerTls(env=env)
    env |= {
        "GITEA__server__CERT_FILE": cert,
        "GITEA__server__KEY_FILE": key,
        "GITEA__server__SSL_MIN_VERSION": "tlsv1.2",
        "GITEA__server__SSL_CIPHER_SUITES": ",".join(s.removeprefix("TLS_").lower() for s in GO_CIPHER_SUITES),
    }
    probe = _curl_probe(ca, _url(service, "http", "/api/healthz"))
    return ServerTls(env=env, healthcheck=_probe(service, probe))


class WebTls(Protocol):
    def __call__(self, service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls: ...


WEB_TLS: Mapping[str, WebTls] = {
    "forgejo": forgejo_tls,
    "prometheus": prometheus_tls,
    "grafana": grafana_tls,
    "loki": loki_tls,
    "redis-exporter": redis_exporter_tls,
}


def web_tls(service: Service, mode: TlsMode) -> ServerTls | None:
    """The service's settings, or None when it is not one of these servers."""
    name = "redis-exporter" if service.name.startswith("redis-exporter-") else service.name
    settings = WEB_TLS.get(name)
    return settings(service, mode) if settings else None
