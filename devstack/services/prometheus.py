"""Prometheus: the catalog entry, its config (prometheus.yml from the catalog and the alert rules,
devstack.monitoring) and its TLS settings: one HTTP listener, which cannot offer TLS beside
plaintext, so it stays on HTTP in dual mode and serves HTTPS once TLS is required.

Every flag and key below was read in the server's own source, at the pinned tag; each function
names what it was checked against."""

from __future__ import annotations

from devstack.model import (
    FULL,
    ConfigContext,
    ConfigFile,
    Datasource,
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
    VolumeMount,
    http_probe,
)
from devstack.monitoring import prometheus_files
from devstack.phases import TlsMode
from devstack.services.apis import APIS
from devstack.tls import CA_FILE, GO_CIPHER_SUITES, TLS_DIR, https_url, tls_files, with_probe

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


def prometheus_web_config(tls_dir: str = TLS_DIR, server: str = "Prometheus") -> str:
    """The --web.config.file for Prometheus's HTTPS listener. Keys: prometheus/exporter-toolkit
    @v0.12.0 (the version prometheus v2.55.1 requires in go.mod):web/tls_config.go, read with
    yaml.UnmarshalStrict; min_version takes TLS10..TLS13, cipher_suites Go's suite names."""
    cert, key, _ = tls_files(tls_dir)
    suites = "".join(f"    - {suite}\n" for suite in GO_CIPHER_SUITES)
    return (
        f"# devstack, TLS required: {server} serves HTTPS only.\n"
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


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    """prometheus.yml from the catalog (devstack.monitoring), in every mode: the image's own
    config scrapes only itself, over http://."""
    return prometheus_files(context.settings, context.selected, PROMETHEUS_CONFIG)


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
        f"--url={https_url(service, 'http', '')}",
    )
    return ServerTls(
        command=(*PROMETHEUS_DEFAULT_ARGS, f"--web.config.file={web_config}"),
        files={
            web_config: prometheus_web_config(tls_dir),
            http_config: promtool_http_config(tls_dir),
        },
        healthcheck=with_probe(service, probe),
    )


PROMETHEUS = Service(
    name="prometheus",
    image="prom/prometheus",
    tag="v2.55.1",
    tier=Tier.OBSERVABILITY,
    host_id=10,
    ports=(Port("http", 9090, 9090),),
    volumes=(VolumeMount("prometheus-data", "/prometheus"),),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9090/-/healthy")),
    limits=Limits(1, 256, weight=2),
    profiles=FULL,
    # prom/prometheus: USER nobody (65534) in its Dockerfile.
    hardening=Hardening(user="65534:65534"),
    flows=(
        Flow("vault", "api"),
        Flow("forgejo", "http"),
        Flow("vector", "metrics"),
        Flow("loki", "http"),
        *(Flow(api.name, "http") for api in APIS),
    ),
    tls=TlsSupport(owner=65534, settings=prometheus_tls),
    config_files=_config_files,
    # Its own TSDB and scrape metrics (prometheus/prometheus@v2.55.1: tsdb/, scrape/,
    # rules/manager.go, notifier/notifier.go); `up` is the one it writes for every target, and
    # the certificates' and secret_ids' not-after come from recording rules the plan generates.
    metrics=Metrics(
        "http",
        exported=(
            "up",
            "prometheus_config_last_reload_successful",
            "prometheus_rule_evaluation_failures_total",
            "prometheus_notifications_dropped_total",
            "prometheus_notifications_errors_total",
            "devstack_certificate_not_after_seconds",
            "devstack_approle_secret_id_not_after_seconds",
        ),
    ),
    scrapes_metrics=True,
    datasource=Datasource("Prometheus", "prometheus", "http"),
)
