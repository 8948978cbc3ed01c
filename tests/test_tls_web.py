"""The single-listener web servers (Forgejo, Prometheus, Grafana, Loki, the Redis exporters: each
in its module in devstack/services/) stay on plain HTTP in off and dual and serve HTTPS only in
required mode, with probes that still work; Forgejo verifies PostgreSQL from dual on. The `real`
tests run Debian's Prometheus and promtool with the generated files and the plan's own
certificates."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devstack.catalog import SERVICES_BY_NAME
from devstack.model import ServerTls, Service
from devstack.phases import TlsMode
from devstack.services.exporters import redis_exporter_tls
from devstack.services.forgejo import forgejo_tls
from devstack.services.grafana import grafana_tls
from devstack.services.loki import LOKI_DEFAULT_ARGS, loki_tls
from devstack.services.prometheus import (
    PROMETHEUS_DEFAULT_ARGS,
    PROMETHEUS_WEB_CONFIG,
    PROMTOOL_HTTP_CONFIG,
    prometheus_tls,
)
from devstack.tls import CA_FILE, CERT_FILE, GO_CIPHER_SUITES, KEY_FILE, TLS_DIR, server_tls
from tests.realservers import (
    _find,
    _server_process,
    _wait_until,
    _write_owned,
)
from tests.shipped import CONTAINER, Scratch, plan_run, scratch, shipped
from tests.tlsclient import handshake, tls12_context
from tools.engine import unwrap

WEB_SERVERS = ("forgejo", "prometheus", "grafana", "loki", "redis-exporter-1", "redis-exporter-2", "redis-exporter-3")
CERT, KEY, CA = f"{TLS_DIR}/{CERT_FILE}", f"{TLS_DIR}/{KEY_FILE}", f"{TLS_DIR}/{CA_FILE}"
NO_CHECK = "--no-check-certificate"
# The probes that cannot verify a certificate (busybox wget without ssl_client): liveness only.
LIVENESS_ONLY = {"loki"}


# Each web server's settings function in its own module (redis-exporter: the web listener alone).
WEB_TLS = {
    "forgejo": forgejo_tls,
    "prometheus": prometheus_tls,
    "grafana": grafana_tls,
    "loki": loki_tls,
    "redis-exporter": redis_exporter_tls,
}


def _service(name: str) -> Service:
    return SERVICES_BY_NAME[name]


def _kind(name: str) -> str:
    return "redis-exporter" if name.startswith("redis-exporter") else name


def _required(name: str) -> ServerTls:
    """The web listener's settings (an exporter's, without its settings as a Redis client)."""
    return WEB_TLS[_kind(name)](_service(name), TlsMode.REQUIRED)


def _test(settings: ServerTls) -> tuple[str, ...]:
    assert settings.healthcheck is not None
    return settings.healthcheck.test


def _probe(settings: ServerTls) -> str:
    return " ".join(_test(settings))


# --- every server ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in WEB_SERVERS if n != "forgejo"])
@pytest.mark.parametrize("mode", [TlsMode.OFF, TlsMode.DUAL])
def test_off_and_dual_leave_the_server_alone(name: str, mode: TlsMode) -> None:
    assert server_tls(_service(name), mode) == ServerTls()


@pytest.mark.parametrize("name", WEB_SERVERS)
def test_required_probe_speaks_https_to_the_same_port(name: str) -> None:
    service = _service(name)
    settings = _required(name)
    assert settings.healthcheck is not None
    port = service.ports[0]  # the HTTP listener (Forgejo's second port is SSH): now TLS only
    assert port.name in {"http", "metrics"}
    assert f"https://localhost:{port.container}/" in _probe(settings) + "/"
    assert "http://" not in _probe(settings)


@pytest.mark.parametrize("name", WEB_SERVERS)
def test_required_probe_verifies_unless_documented(name: str) -> None:
    probe = _probe(_required(name))
    base = "redis-exporter" if name.startswith("redis-exporter") else name
    if base in LIVENESS_ONLY:
        assert NO_CHECK in probe
    else:
        assert NO_CHECK not in probe
    if base in {"forgejo", "grafana"}:
        assert f"--cacert {CA}" in probe
    if base == "prometheus":
        assert f"--http.config.file={TLS_DIR}/{PROMTOOL_HTTP_CONFIG}" in probe


@pytest.mark.parametrize("name", WEB_SERVERS)
def test_required_keeps_the_probe_timing(name: str) -> None:
    service = _service(name)
    probe = _required(name).healthcheck
    assert probe is not None
    assert (probe.interval, probe.timeout, probe.retries, probe.start_period) == (
        service.healthcheck.interval,
        service.healthcheck.timeout,
        service.healthcheck.retries,
        service.healthcheck.start_period,
    )


def _paths(settings: ServerTls) -> list[str]:
    words = [*settings.args, *(settings.command or ()), *settings.env.values(), *settings.files]
    assert settings.healthcheck is not None
    words += settings.healthcheck.test
    values = [w.split("=", 1)[-1] for w in words]
    return [
        v for v in values if v.startswith("/") and not v.startswith(("/etc/", "/usr/", "/prometheus", "/bin/", "/dev/"))
    ]


@pytest.mark.parametrize("name", WEB_SERVERS)
def test_required_files_are_under_the_tls_directory(name: str) -> None:
    paths = _paths(_required(name))
    assert paths
    assert all(p.startswith(f"{TLS_DIR}/") for p in paths), paths


@pytest.mark.parametrize("name", WEB_SERVERS)
def test_the_tls_directory_is_a_parameter(name: str) -> None:
    service = _service(name)
    settings = WEB_TLS[_kind(name)](service, TlsMode.REQUIRED, "/elsewhere")
    text = repr(settings)
    assert TLS_DIR not in text
    assert "/elsewhere/" in text


# --- Prometheus --------------------------------------------------------------------------------


def test_prometheus_restates_the_image_command_and_adds_the_web_config() -> None:
    settings = _required("prometheus")
    assert settings.command == (*PROMETHEUS_DEFAULT_ARGS, f"--web.config.file={TLS_DIR}/{PROMETHEUS_WEB_CONFIG}")
    assert settings.args == ()
    assert settings.env == {}
    assert set(settings.files) == {
        f"{TLS_DIR}/{PROMETHEUS_WEB_CONFIG}",
        f"{TLS_DIR}/{PROMTOOL_HTTP_CONFIG}",
    }  # prometheus.yml is generated in every mode (devstack.monitoring; tests/test_monitoring.py)


def test_prometheus_web_config() -> None:
    config = yaml.safe_load(_required("prometheus").files[f"{TLS_DIR}/{PROMETHEUS_WEB_CONFIG}"])
    assert config == {
        "tls_server_config": {
            "cert_file": CERT,
            "key_file": KEY,
            "min_version": "TLS12",
            "cipher_suites": list(GO_CIPHER_SUITES),
        }
    }


def test_promtool_trusts_the_ca() -> None:
    config = yaml.safe_load(_required("prometheus").files[f"{TLS_DIR}/{PROMTOOL_HTTP_CONFIG}"])
    assert config == {"tls_config": {"ca_file": CA, "min_version": "TLS12"}}


def test_prometheus_probe_is_promtool() -> None:
    assert _test(_required("prometheus")) == (
        "CMD",
        "/bin/promtool",
        "check",
        "healthy",
        f"--http.config.file={TLS_DIR}/{PROMTOOL_HTTP_CONFIG}",
        "--url=https://localhost:9090",
    )


def test_tls12_suites_are_forward_secret_aead() -> None:
    assert GO_CIPHER_SUITES
    for suite in GO_CIPHER_SUITES:
        assert suite.startswith(("TLS_ECDHE_ECDSA_WITH_", "TLS_ECDHE_RSA_WITH_"))
        assert suite.endswith(("_GCM_SHA256", "_GCM_SHA384", "_CHACHA20_POLY1305_SHA256"))
    assert GO_CIPHER_SUITES[0].startswith("TLS_ECDHE_ECDSA_")  # our leaves are ECDSA P-256


# --- Grafana -----------------------------------------------------------------------------------


def test_grafana_env() -> None:
    settings = _required("grafana")
    assert settings.env == {
        "GF_SERVER_PROTOCOL": "h2",  # https would still allow ECDHE-ECDSA-AES256-SHA (CBC)
        "GF_SERVER_CERT_FILE": CERT,
        "GF_SERVER_CERT_KEY": KEY,
        "GF_SERVER_MIN_TLS_VERSION": "TLS1.2",
        "GF_SERVER_ROOT_URL": "https://localhost:3000/",  # not the h2:// the default would give
    }
    assert settings.command is None
    assert settings.args == ()
    assert settings.healthcheck is not None
    assert settings.healthcheck.test == (
        "CMD",
        "curl",
        "-fsS",
        "-o",
        "/dev/null",
        "--cacert",
        CA,
        "https://localhost:3000/api/health",
    )


# --- Loki --------------------------------------------------------------------------------------


def test_loki_flags() -> None:
    settings = _required("loki")
    assert settings.command == (
        *LOKI_DEFAULT_ARGS,
        f"-server.http-tls-cert-path={CERT}",
        f"-server.http-tls-key-path={KEY}",
        "-server.tls-min-version=VersionTLS12",
        "-server.tls-cipher-suites=" + ",".join(GO_CIPHER_SUITES),
    )
    assert LOKI_DEFAULT_ARGS == ("-config.file=/etc/loki/local-config.yaml",)
    assert settings.env == {}
    assert settings.files == {}


def test_loki_probe_is_liveness_over_tls() -> None:
    assert _test(_required("loki")) == (
        "CMD-SHELL",
        "wget -q --no-check-certificate -O /dev/null https://localhost:3100/ready || exit 1",
    )


# --- Redis exporters ---------------------------------------------------------------------------


@pytest.mark.parametrize("index", [1, 2, 3])
def test_redis_exporter_env(index: int) -> None:
    settings = _required(f"redis-exporter-{index}")
    assert settings.env == {
        "REDIS_EXPORTER_TLS_SERVER_CERT_FILE": CERT,
        "REDIS_EXPORTER_TLS_SERVER_KEY_FILE": KEY,
        "REDIS_EXPORTER_TLS_SERVER_MIN_VERSION": "TLS1.2",
    }
    assert not any(key.startswith("REDIS_EXPORTER_TLS_CLIENT") or key == "REDIS_ADDR" for key in settings.env)
    assert settings.healthcheck is not None
    assert settings.healthcheck.test == ("CMD-SHELL", "wget -q -O /dev/null https://localhost:9121/health || exit 1")


# --- Forgejo -----------------------------------------------------------------------------------

PLAIN_FORGEJO = {
    "GITEA__server__PROTOCOL": "http",
    "GITEA__server__ROOT_URL": "http://localhost:3000/",
}


def test_forgejo_off_restates_plain_http_and_a_plaintext_database() -> None:
    # app.ini on the data volume keeps what an earlier mode wrote: off must undo it.
    settings = forgejo_tls(_service("forgejo"), TlsMode.OFF)
    assert settings == ServerTls(env={**PLAIN_FORGEJO, "GITEA__database__SSL_MODE": "disable"})


def test_forgejo_dual_verifies_postgres_and_stays_on_http() -> None:
    settings = forgejo_tls(_service("forgejo"), TlsMode.DUAL)
    assert settings == ServerTls(
        env={**PLAIN_FORGEJO, "GITEA__database__SSL_MODE": "verify-full", "PGSSLROOTCERT": CA},
    )


def test_forgejo_required() -> None:
    settings = forgejo_tls(_service("forgejo"), TlsMode.REQUIRED)
    assert settings.env == {
        "GITEA__server__PROTOCOL": "https",
        "GITEA__server__ROOT_URL": "https://localhost:3000/",
        "GITEA__server__CERT_FILE": CERT,
        "GITEA__server__KEY_FILE": KEY,
        "GITEA__server__SSL_MIN_VERSION": "tlsv1.2",
        "GITEA__server__SSL_CIPHER_SUITES": (
            "ecdhe_ecdsa_with_aes_128_gcm_sha256,ecdhe_ecdsa_with_aes_256_gcm_sha384,"
            "ecdhe_ecdsa_with_chacha20_poly1305_sha256,ecdhe_rsa_with_aes_128_gcm_sha256,"
            "ecdhe_rsa_with_aes_256_gcm_sha384,ecdhe_rsa_with_chacha20_poly1305_sha256"
        ),
        "GITEA__database__SSL_MODE": "verify-full",
        "PGSSLROOTCERT": CA,
    }
    assert settings.args == ()
    assert settings.command is None
    assert settings.healthcheck is not None
    assert settings.healthcheck.test == (
        "CMD",
        "curl",
        "-fsS",
        "-o",
        "/dev/null",
        "--cacert",
        CA,
        "https://localhost:3000/api/healthz",
    )


def test_forgejo_keys_do_not_collide_with_the_catalog() -> None:
    """The catalog's own GITEA__ settings stay; ours only add keys."""
    catalog_env = _service("forgejo").env
    for mode in TlsMode:
        assert not set(forgejo_tls(_service("forgejo"), mode).env) & set(catalog_env)


# --- real Prometheus and promtool (Debian's `prometheus` package) ------------------------------


@dataclass(frozen=True)
class RunningPrometheus:
    port: int
    directory: Path
    ca: Path
    scratch: Scratch


PROMETHEUS = ("phase=4", "profiles=full")  # TLS required


@pytest.fixture
def prometheus_files() -> Iterator[Scratch]:
    """The plan's prometheus container materialised (tests/shipped.py)."""
    with scratch(shipped("prometheus", *PROMETHEUS)) as s:
        yield s


@pytest.mark.real
def test_promtool_checks_the_web_config(prometheus_files: Scratch) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: apt-get install prometheus (listed in .ci/apt-packages)")
    web_config = prometheus_files.host(f"{TLS_DIR}/{PROMETHEUS_WEB_CONFIG}")
    result = subprocess.run(
        [promtool, "check", "web-config", str(web_config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "SUCCESS" in result.stderr
    # The check is real: an unknown suite or version fails it.
    bad = prometheus_files.root / "bad.yml"
    _write_owned(bad, web_config.read_text().replace("min_version: TLS12", "min_version: TLS99"))
    refused = subprocess.run(
        [promtool, "check", "web-config", str(bad)], capture_output=True, text=True, timeout=30, check=False
    )
    assert refused.returncode != 0


@pytest.mark.real
def test_promtool_checks_the_prometheus_config(prometheus_files: Scratch) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: apt-get install prometheus (listed in .ci/apt-packages)")
    config = prometheus_files.host("/etc/prometheus/prometheus.yml")  # it opens the CA file it names
    shipped_text = config.read_text()
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The check is real: an unknown TLS version fails it.
    _write_owned(config, shipped_text.replace("TLS12", "TLS99"))
    refused = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    assert refused.returncode != 0


def test_prometheus_required_keeps_its_config_file() -> None:
    settings = prometheus_tls(_service("prometheus"), TlsMode.REQUIRED)
    assert "--config.file=/etc/prometheus/prometheus.yml" in (settings.command or ())


def _context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _ready(port: int, ca: Path) -> bool:
    try:
        return _get(port, "/-/ready", _context(ca))[0] == 200
    except (OSError, http.client.HTTPException):
        return False


@pytest.fixture(scope="module")
def prometheus() -> Iterator[RunningPrometheus]:
    """Debian's Prometheus with exactly the plan's files and command (tests/shipped.py), scraping
    itself over HTTPS with the shipped client config: that checks the CA file and the server name
    together."""
    try:
        binary = _find("prometheus")
    except RuntimeError:
        pytest.skip("prometheus missing: apt-get install prometheus (listed in .ci/apt-packages)")
    item = shipped("prometheus", *PROMETHEUS)
    with scratch(item) as s:
        s.check_rules(item.text("/etc/prometheus/prometheus.yml"), *item.command)
        port, ca = s.port(9090), s.host(f"{TLS_DIR}/{CA_FILE}")
        s.directory("/prometheus")  # the data volume
        # The image listens on every address of the container; the test on 127.0.0.1 only.
        args = [binary, *map(s.arg, item.command), f"--web.listen-address=127.0.0.1:{port}"]
        log = s.root / "prometheus.log"
        with _server_process(args, log, signal.SIGTERM) as process:
            _wait_until(lambda: _ready(port, ca), process, log, "prometheus")
            yield RunningPrometheus(port, s.root, ca, s)


@pytest.mark.real
def test_prometheus_serves_https_verified_by_the_ca(prometheus: RunningPrometheus) -> None:
    status, body = _get(prometheus.port, "/-/healthy", _context(prometheus.ca))
    assert status == 200, body


@pytest.mark.real
def test_prometheus_refuses_plaintext(prometheus: RunningPrometheus) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", prometheus.port, timeout=5)
    try:
        connection.request("GET", "/-/healthy")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        status = None
    finally:
        connection.close()
    assert status != 200  # Go answers 400 "Client sent an HTTP request to an HTTPS server"


@pytest.mark.real
def test_prometheus_tls12_takes_only_forward_secret_aead(prometheus: RunningPrometheus) -> None:
    for accepted in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        assert handshake(prometheus.port, tls12_context(prometheus.ca, accepted)) == accepted
    for refused in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"):
        context = tls12_context(prometheus.ca, refused)  # the client can offer it: the server refuses
        with pytest.raises(ssl.SSLError):
            handshake(prometheus.port, context)


@pytest.mark.real
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_prometheus_refuses_tls11(prometheus: RunningPrometheus) -> None:
    context = _context(prometheus.ca)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    with pytest.raises(ssl.SSLError):
        handshake(prometheus.port, context)


@pytest.mark.real
def test_promtool_client_config_verifies_prometheus(prometheus: RunningPrometheus) -> None:
    """The generated self-scrape (CA file, TLS 1.2): `up` is 1 only if Prometheus verified its
    own certificate against the CA for the name localhost."""
    query = "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="prometheus"}'})
    deadline = time.monotonic() + 60  # the shipped 15 s scrape interval
    values: list[str] = []
    while time.monotonic() < deadline:
        _, body = _get(prometheus.port, query, _context(prometheus.ca))
        values = [r["value"][1] for r in json.loads(body)["data"]["result"]]
        if values == ["1"]:
            return
        time.sleep(0.5)
    targets = _get(prometheus.port, "/api/v1/targets", _context(prometheus.ca))[1]
    pytest.fail(f"self-scrape over HTTPS is not up ({values}): {targets[:2000]!r}")


@pytest.mark.real
def test_promtool_healthy_probe(prometheus: RunningPrometheus) -> None:
    """The exact probe, when this promtool has `check healthy` (2.44+; the image's 2.55.1 has it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool comes with Debian's prometheus package")
    usage = subprocess.run([promtool, "check", "--help"], capture_output=True, text=True, timeout=30, check=False)
    if "healthy" not in usage.stdout + usage.stderr:
        pytest.skip("this promtool predates `check healthy` (Prometheus 2.44)")
    # The container's own healthcheck, with the test's mappings.
    healthcheck = unwrap(plan_run(*PROMETHEUS).one(CONTAINER, "prometheus").inputs["healthcheck"])["tests"]
    test = [
        prometheus.scratch.arg(a).replace("localhost:9090", f"localhost:{prometheus.port}") for a in healthcheck[1:]
    ]
    test[0] = promtool
    result = subprocess.run(test, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.real
def test_busybox_wget_liveness_probe_handshakes(prometheus: RunningPrometheus) -> None:
    """Loki's probe style (busybox wget, no verification) against a Go server limited to the same
    suites: busybox's own TLS must still agree on one."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is installed by .ci/run (busybox-static)")
    url = f"https://localhost:{prometheus.port}/-/healthy"
    result = subprocess.run(
        [busybox, "wget", "-q", NO_CHECK, "-O", "/dev/null", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "not compiled" in result.stderr or "ssl_helper" in result.stderr or "openssl" in result.stderr:
        pytest.skip(f"this busybox has no TLS of its own: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
