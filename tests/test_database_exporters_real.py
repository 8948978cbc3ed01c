"""The database exporters for real: Debian's prometheus-postgres-exporter and
prometheus-mysqld-exporter, started with what the plan ships their containers (arguments, the
files the shipped entrypoint wrapper writes from the plan's secret), log in to the tests' real
PostgreSQL and MariaDB (started with the plan's files and its accounts script, which creates
their read-only monitoring accounts), and every metric name the catalog says they export (the
names the alert rules and dashboards may read) is in what they serve.

Mapped as tests/shipped.py says (MAPPINGS), and besides: the exporter listens on 127.0.0.1 at a
free port (--web.listen-address; the image listens on every address), and PostgreSQL's address
in DATA_SOURCE_URI (`postgres:5432`) is 127.0.0.1 and the test server's port. Phase 2 (the
exporters connect in plaintext, serve HTTP) and phase 4 (TLS to the database verified by the
CA, HTTPS on the metrics listener)."""

from __future__ import annotations

import contextlib
import re
import shutil
import ssl
import time
import urllib.request
from collections.abc import Iterator, Mapping

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.phases import TlsMode
from devstack.tls import CA_FILE, TLS_DIR
from tests.realservers import LOCALHOST, _server_process, _wait_until
from tests.shipped import Scratch, scratch, shipped, start_mariadb, start_postgres

pytestmark = pytest.mark.real

PROFILES = "profiles=full"
PACKAGES = {
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-mysqld-exporter": "prometheus-mysqld-exporter",
    "mariadbd": "mariadb-server",
    "initdb": "postgresql",
}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", re.MULTILINE)


def _need(*binaries: str) -> None:
    for binary in binaries:
        path = shutil.which(binary, path="/usr/bin:/usr/sbin:/usr/lib/postgresql/15/bin")
        if path is None:
            pytest.skip(f"{binary} missing: apt-get install {PACKAGES[binary]} (listed in .ci/apt-packages)")


def samples(text: str) -> dict[str, list[tuple[str, float]]]:
    """Metric name -> (labels, value) of each sample in a Prometheus text exposition."""
    found: dict[str, list[tuple[str, float]]] = {}
    for name, labels, value in SAMPLE.findall(text):
        found.setdefault(name, []).append((labels, float(value)))
    return found


def _fetch(url: str, ca: Scratch | None) -> str:
    context = ssl.create_default_context(cafile=str(ca.host(f"{TLS_DIR}/{CA_FILE}"))) if ca else None
    with urllib.request.urlopen(url, timeout=10, context=context) as answer:
        return answer.read().decode()


def _url(s: Scratch, port: int) -> str:
    if s.shipped.tls is TlsMode.REQUIRED:
        return f"https://localhost:{s.port(port)}/metrics"  # a name the exporter's certificate carries
    return f"http://{LOCALHOST}:{s.port(port)}/metrics"


@contextlib.contextmanager
def exporter(s: Scratch, binary: str, program: str, port: int, env: Mapping[str, str]) -> Iterator[str]:
    """The Debian exporter with the container's arguments; yields its first scrape once the
    login has been tried (its `*_up` sample is there)."""
    args = [shutil.which(binary) or binary, *map(s.arg, s.shipped.args_after(program))]
    args.append(f"--web.listen-address={LOCALHOST}:{s.port(port)}")
    log = s.root / "exporter.log"
    ca = s if s.shipped.tls is TlsMode.REQUIRED else None
    scraped: list[str] = []

    def ready() -> bool:
        try:
            scraped.append(_fetch(_url(s, port), ca))
        except OSError:
            return False
        return True

    with _server_process(args, log, 15, env=env) as process:
        _wait_until(ready, process, log, binary)
        yield scraped[-1]


def _missing(text: str, service: str) -> list[str]:
    metrics = SERVICES_BY_NAME[service].metrics
    assert metrics is not None
    return [name for name in metrics.exported if name not in samples(text)]


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_env(s: Scratch, pg_port: int, password_file: str | None = None) -> dict[str, str]:
    env = s.shipped.env
    uri = s.moved(env.get("DATA_SOURCE_URI", "")).replace("postgres:5432", f"{LOCALHOST}:{pg_port}")
    assert f"{LOCALHOST}:{pg_port}/postgres?sslmode=" in uri, uri
    return {
        "DATA_SOURCE_URI": uri,
        "DATA_SOURCE_USER_FILE": s.moved(env["DATA_SOURCE_USER_FILE"]),
        "DATA_SOURCE_PASS_FILE": password_file or s.moved(env["DATA_SOURCE_PASS_FILE"]),
    }


@pytest.mark.parametrize("phase", [2, 4])
def test_postgres_exporter_logs_in_with_its_monitoring_account(phase: int) -> None:
    _need("prometheus-postgres-exporter", "initdb")
    overrides = (f"phase={phase}", PROFILES)
    with (
        scratch(shipped("postgres", *overrides)) as pg,
        start_postgres(pg) as server,
        scratch(shipped("postgres-exporter", *overrides), peers={"postgres": server.port}) as s,
    ):
        assert (s.shipped.tls is TlsMode.REQUIRED) == (phase == 4)
        user = s.host(s.shipped.env["DATA_SOURCE_USER_FILE"]).read_text().strip()
        assert user == "postgres_exporter"
        # The shipped account step made it a read-only member of pg_monitor.
        assert server.admin_query(f"SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = '{user}'") == "f|f"
        assert server.admin_query(f"SELECT pg_has_role('{user}', 'pg_monitor', 'member')") == "t"
        start = time.monotonic()
        env = _pg_env(s, server.port)
        with exporter(s, "prometheus-postgres-exporter", "/bin/postgres_exporter", 9187, env) as text:
            found = samples(text)
            assert found["pg_up"] == [("", 1.0)], text[:2000]
            assert _missing(text, "postgres-exporter") == []
            assert found["pg_settings_max_connections"][0][1] > 0
            states = {labels for labels, _ in found["pg_stat_activity_count"]}
            assert any('state="active"' in labels for labels in states)
        print(f"postgres-exporter phase {phase}: first scrape after {time.monotonic() - start:.1f}s")


def test_postgres_exporter_reports_down_with_a_wrong_password() -> None:
    """The check above can fail: with another password the same exporter reports pg_up 0."""
    _need("prometheus-postgres-exporter", "initdb")
    overrides = ("phase=2", PROFILES)
    with (
        scratch(shipped("postgres", *overrides)) as pg,
        start_postgres(pg) as server,
        scratch(shipped("postgres-exporter", *overrides), peers={"postgres": server.port}) as s,
    ):
        wrong = s.root / "wrong-password"
        wrong.write_text("not-the-password")
        wrong.chmod(0o644)
        env = _pg_env(s, server.port, password_file=str(wrong))
        with exporter(s, "prometheus-postgres-exporter", "/bin/postgres_exporter", 9187, env) as text:
            assert samples(text)["pg_up"] == [("", 0.0)]


# --- MySQL (MariaDB) ------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [2, 4])
def test_mysql_exporter_logs_in_with_its_monitoring_account(phase: int) -> None:
    _need("prometheus-mysqld-exporter", "mariadbd")
    overrides = (f"phase={phase}", PROFILES)
    with (
        scratch(shipped("mysql", *overrides)) as my,
        start_mariadb(my) as server,
        scratch(shipped("mysql-exporter", *overrides), peers={"mysql": server.port}) as s,
    ):
        cnf = s.host("/run/devstack/my.cnf").read_text()
        assert "user = mysql_exporter\n" in cnf
        assert f"port = {server.port}\n" in cnf
        assert ("ssl-ca = " in cnf) == (phase == 4)
        grants = server.apply("SHOW GRANTS FOR 'mysql_exporter'@'%';\n")
        assert "PROCESS" in grants.stdout, grants.stdout
        assert "ALL PRIVILEGES" not in grants.stdout, grants.stdout
        with exporter(s, "prometheus-mysqld-exporter", "/bin/mysqld_exporter", 9104, {}) as text:
            found = samples(text)
            assert found["mysql_up"] == [("", 1.0)], text[:2000]
            assert _missing(text, "mysql-exporter") == []
            assert found["mysql_global_status_threads_connected"][0][1] >= 1
