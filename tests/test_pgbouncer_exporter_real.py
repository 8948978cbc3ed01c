"""PgBouncer's waiting clients for real: Debian's PgBouncer with the shipped pgbouncer.ini and
users file (its auth_file, written by the shipped wrapper from the plan's secret) in front of a
real PostgreSQL with the plan's accounts; the exporter logs in as one of its stats_users with
the password file the plan uploads; a client held waiting shows in the scrape, and those values,
under the names the shipped image exports, fire the shipped rule in promtool.

The image's exporter (prometheus-community/pgbouncer_exporter v0.12.1, Go) cannot be built here:
the module proxy refused it at every version asked. Debian's prometheus-pgbouncer-exporter (1.7)
is another program (Python, libpq through psycopg2). Its command registers a SHOW STATS collector
that reads `total_requests`, a column PgBouncer 1.8 removed, so it exits at start against
Debian's own 1.18; the test serves that package's own pools, databases and lists collectors
through the package's own connection function instead (PROGRAM). It names cl_waiting
`pgbouncer_waiting_clients` where the image says `pgbouncer_pools_client_waiting_connections`
(IMAGE_NAMES), both read from SHOW POOLS; it has no `maxwait`, which the test reads from the same
admin console as the same user, with the same password file.

Mapped besides tests/shipped.py's MAPPINGS: the connection string's host and port become
127.0.0.1 and PgBouncer's test port (Debian's program takes them as arguments; it always asks
for the `pgbouncer` database the string names), its sslmode and sslrootcert reach libpq as
PGSSLMODE and PGSSLROOTCERT, HOME is the scratch root (the image's nobody has no ~/.postgresql),
the exporter listens on 127.0.0.1 at a free port over HTTP, and PgBouncer's pool is cut to one
server connection (default_pool_size = 1) so that one open transaction fills it. Phases 2
(plaintext) and 4 (TLS to PgBouncer verified by the CA, plaintext refused); the image's HTTPS
metrics listener at phase 4 (--web.config.file) is not run: Debian's program has none."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.services.pgbouncer import INI_PATH
from tests.realservers import LOCALHOST, _clean_env, _find, _server_process, _wait_until, free_port
from tests.shipped import Scratch, scratch, shipped, start_pgbouncer, start_postgres, vault_secrets
from tests.test_database_exporters_real import samples

pytestmark = pytest.mark.real

PROFILES = "profiles=full"
EXPORTER = "pgbouncer-exporter"
DEBIAN_PACKAGE = Path("/usr/lib/python3/dist-packages/prometheus_pgbouncer_exporter")
# Debian's name -> the image's, for the same SHOW POOLS column (cl_waiting).
IMAGE_NAMES = {"pgbouncer_waiting_clients": "pgbouncer_pools_client_waiting_connections"}
# Every SHOW pgbouncer_exporter v0.12.1 runs (collector.go): its stats user must be allowed each.
IMAGE_SHOWS = ("DATABASES", "STATS_TOTALS", "POOLS", "LISTS", "CONFIG", "CLIENTS")
PROGRAM = textwrap.dedent(
    """\
    import sys, threading
    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry
    from prometheus_pgbouncer_exporter.collectors import DatabasesCollector, ListsCollector, PoolsCollector
    from prometheus_pgbouncer_exporter.utils import get_connection

    user, port, host, listen = sys.argv[1:5]
    connection = get_connection(user, port, host)
    registry = CollectorRegistry()
    registry.register(PoolsCollector(connection=connection, databases=None))
    registry.register(DatabasesCollector(connection=connection, databases=None))
    registry.register(ListsCollector(connection=connection))
    start_http_server(int(listen), addr="127.0.0.1", registry=registry)
    threading.Event().wait()
    """
)


def _need() -> None:
    for binary, package in (("pgbouncer", "pgbouncer"), ("initdb", "postgresql"), ("promtool", "prometheus")):
        if shutil.which(binary, path="/usr/bin:/usr/sbin:/usr/lib/postgresql/15/bin") is None:
            pytest.skip(f"{binary} missing: apt-get install {package} (listed in .ci/apt-packages)")
    if not DEBIAN_PACKAGE.is_dir():
        pytest.skip("prometheus-pgbouncer-exporter missing: apt-get install it (listed in .ci/apt-packages)")


def _connection(s: Scratch) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(s.shipped.env["PGBOUNCER_EXPORTER_CONNECTION_STRING"])


def _exporter_env(s: Scratch) -> dict[str, str]:
    """What libpq takes from the container's environment: the password file (moved), and the
    connection string's sslmode and root certificate (moved)."""
    options = urllib.parse.parse_qs(_connection(s).query)
    env = {"PGPASSFILE": s.moved(s.shipped.env["PGPASSFILE"]), "PGSSLMODE": options["sslmode"][0]}
    if "sslrootcert" in options:
        env["PGSSLROOTCERT"] = s.moved(options["sslrootcert"][0])
    return env


@contextlib.contextmanager
def exporter(s: Scratch, bouncer_port: int) -> Iterator[str]:
    """Debian's exporter code logged in as the shipped connection string's user; yields its URL."""
    connection = _connection(s)
    assert connection.hostname == "pgbouncer", connection
    assert connection.path == "/pgbouncer", connection
    assert connection.password is None  # the password only ever comes from the file
    listen = free_port()
    # As the image's nobody, which has no ~/.postgresql (libpq would read a client certificate there).
    env = _exporter_env(s) | {"HOME": str(s.root)}
    args = ["/usr/bin/python3", "-c", PROGRAM, connection.username or "", str(bouncer_port), LOCALHOST, str(listen)]
    log = s.root / "exporter.log"
    url = f"http://{LOCALHOST}:{listen}/metrics"

    def ready() -> bool:
        try:
            _fetch(url)
        except OSError:
            return False
        return True

    with _server_process(args, log, 15, env=env) as process:
        _wait_until(ready, process, log, "prometheus-pgbouncer-exporter")
        yield url


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def _psql(port: int, user: str, database: str) -> list[str]:
    return [_find("psql"), "-X", "-qAt", "-h", LOCALHOST, "-p", str(port), "-U", user, "-d", database]


def _admin_console(s: Scratch, port: int, command: str, **changed: str) -> subprocess.CompletedProcess[str]:
    """One SHOW in PgBouncer's admin console as the exporter's user, with its password file
    (a header line first, then `|`-separated rows); `changed`: libpq settings a check changes."""
    user = _connection(s).username or ""
    env = _clean_env(_exporter_env(s) | {"PGCONNECT_TIMEOUT": "5"} | changed)
    return subprocess.run(
        [*_psql(port, user, "pgbouncer"), "-P", "tuples_only=off", "-P", "footer=off", "-c", f"SHOW {command};"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
        check=False,
    )


@contextlib.contextmanager
def one_waiting_client(port: int, user: str, password: str, tls: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A client holding the pool's only server connection in an open transaction, and a second
    client of the same pool whose query waits for it; both let go afterwards."""
    env = _clean_env({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", "PGPASSFILE": os.devnull} | tls)
    # PgBouncer 1.18 runs the auth_query in the client's database (see tests/shipped.py): `postgres`.
    command = _psql(port, user, "postgres")
    holder = subprocess.Popen(
        [*command, "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    holder.stdin.write("BEGIN;\nSELECT 'holding';\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "holding"  # the transaction has its server connection
    waiter = subprocess.Popen(
        [*command, "-c", "SELECT 'served';"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield waiter
    finally:
        holder.stdin.write("ROLLBACK;\n")
        holder.stdin.close()
        holder.wait(timeout=20)
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 0, err
        assert out.strip() == "served", err


def _waiting(text: str, user: str) -> float:
    found = samples(text).get("pgbouncer_waiting_clients", [])
    return sum(value for labels, value in found if f'user="{user}"' in labels)


def _rule_test(rules: Path, waiting: float, pool: str) -> str:
    """promtool cases on the scraped value held for 2 min (fires), and on no waiting (does not)."""
    series = f'{IMAGE_NAMES["pgbouncer_waiting_clients"]}{{{pool}, service="{EXPORTER}"}}'
    found = dict(re.findall(r'(\w+)="([^"]*)"', pool))
    labels = ", ".join(f'{key}: "{value}"' for key, value in found.items())
    name = f"{found['database']}/{found['user']}"
    quiet = series.replace('database="', 'database="quiet-')
    return textwrap.dedent(
        f"""\
        rule_files: [{rules}]
        evaluation_interval: 15s
        tests:
          - interval: 15s
            input_series:
              - series: '{series}'
                values: '{waiting:g}x10'
              - series: '{quiet}'
                values: '0x10'
            alert_rule_test:
              - eval_time: 1m45s
                alertname: PgbouncerClientsWaiting
                exp_alerts: []
              - eval_time: 2m
                alertname: PgbouncerClientsWaiting
                exp_alerts:
                  - exp_labels: {{severity: warning, service: {EXPORTER}, {labels}}}
                    exp_annotations:
                      summary: "{waiting:g} clients wait for a server connection in PgBouncer's pool {name}"
                      runbook: docs/alerting.md#warning-alerts
        """
    )


def _check_the_stats_account(s: Scratch, port: int, pgpass: Path, phase: int) -> None:
    """The shipped password file logs the exporter's user in to the admin console, which answers
    every SHOW the image's exporter runs and nothing else; another password, or plaintext once
    TLS is required, is refused."""
    for command in IMAGE_SHOWS:
        answer = _admin_console(s, port, command)
        assert answer.returncode == 0, (command, answer.stderr)
    assert _admin_console(s, port, "USERS; RELOAD").returncode != 0  # a stats user: SHOW only
    wrong = s.root / "wrong-pgpass"
    wrong.write_text(pgpass.read_text().rsplit(":", 1)[0] + ":not-the-password\n")
    wrong.chmod(0o600)
    assert _admin_console(s, port, "POOLS", PGPASSFILE=str(wrong)).returncode != 0
    assert (_exporter_env(s)["PGSSLMODE"] == "verify-full") == (phase == 4)
    if phase == 4:  # PgBouncer refuses the exporter in plaintext once TLS is required
        assert _admin_console(s, port, "POOLS", PGSSLMODE="disable").returncode != 0


@pytest.mark.parametrize("phase", [2, 4])
def test_the_exporter_sees_a_waiting_client_and_the_shipped_rule_fires_on_it(phase: int) -> None:
    _need()
    started = time.monotonic()
    overrides = (f"phase={phase}", PROFILES)
    forgejo = vault_secrets(*overrides)["forgejo"]
    rules_text = shipped("prometheus", *overrides).uploads["/etc/prometheus/rules/databases.yml"].content
    with (
        scratch(shipped("postgres", *overrides)) as pg,
        start_postgres(pg) as server,
        scratch(shipped("pgbouncer", *overrides), peers={"postgres": server.port}) as b,
        scratch(shipped(EXPORTER, *overrides)) as s,
    ):
        ini = b.host(INI_PATH)
        text = ini.read_text()
        assert "stats_users = pgbouncer_exporter\n" in text
        ini.write_text(text.replace("default_pool_size = 10\n", "default_pool_size = 1\n"))
        auth_file = b.host("/run/devstack/users_acl").read_text()
        assert '"pgbouncer_exporter" "SCRAM-SHA-256$' in auth_file  # a verifier, never the password
        assert vault_secrets(*overrides)[EXPORTER]["pgbouncer_password"] not in auth_file
        pgpass = Path(_exporter_env(s)["PGPASSFILE"])
        assert pgpass.stat().st_mode & 0o777 == 0o400
        with start_pgbouncer(b):
            port = b.port(5432)
            _check_the_stats_account(s, port, pgpass, phase)
            tls = {k: v for k, v in _exporter_env(s).items() if k != "PGPASSFILE"}
            with exporter(s, port) as url:
                user = forgejo["postgres_user"]
                assert _waiting(_fetch(url), user) == 0
                exporter_user = _connection(s).username
                header, *rows = _admin_console(s, port, "CLIENTS").stdout.splitlines()
                clients = [dict(zip(header.split("|"), row.split("|"), strict=True)) for row in rows]
                mine = [c for c in clients if c["user"] == exporter_user]
                assert len(mine) == 2, clients  # the exporter's connection and this console's
                assert all(bool(c["tls"]) == (phase == 4) for c in mine), mine  # TLS once required
                with one_waiting_client(port, user, forgejo["postgres_password"], tls):
                    deadline = time.monotonic() + 15
                    while (waiting := _waiting(scraped := _fetch(url), user)) < 1 and time.monotonic() < deadline:
                        time.sleep(0.5)
                    assert waiting == 1, scraped
                    time.sleep(1.2)  # maxwait counts whole seconds
                    header, *rows = _admin_console(s, port, "POOLS").stdout.splitlines()
                    pools = [dict(zip(header.split("|"), row.split("|"), strict=True)) for row in rows]
                    (pool_row,) = [p for p in pools if p["user"] == user]
                    assert pool_row["cl_waiting"] == "1", pool_row
                    assert int(pool_row["maxwait"]) >= 1, pool_row  # the image's client_maxwait_seconds
                    waited = time.monotonic() - started
                line = next(labels for labels, value in samples(scraped)["pgbouncer_waiting_clients"] if value == 1)
        rules = s.root / "databases.yml"
        rules.write_text(rules_text)
        pool = line.strip("{}")
        cases = s.root / "waiting.test.yml"
        cases.write_text(_rule_test(rules, waiting, pool))
        answer = subprocess.run(
            [_find("promtool"), "test", "rules", str(cases)], capture_output=True, text=True, timeout=60, check=False
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
    total = time.monotonic() - started
    print(f"pgbouncer-exporter phase {phase}: wait seen after {waited:.1f}s, rule checked after {total:.1f}s")
