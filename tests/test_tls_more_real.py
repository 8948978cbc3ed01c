"""Real MariaDB (for MySQL) and PgBouncer (in front of a real PostgreSQL) on 127.0.0.1, configured
with the generated TLS settings and the plan's own certificates: dual mode takes TLS and plaintext,
required mode refuses plaintext, and PgBouncer verifies PostgreSQL's certificate."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.phases import TlsMode
from devstack.services.mysql import mysql_args
from devstack.services.pgbouncer import pgbouncer_ini_lines
from devstack.services.postgres import postgres_args
from devstack.tls import CA_FILE, CIPHERS
from tests.planpki import server_files
from tests.realservers import (
    LOCALHOST,
    MariaDb,
    ServerUnavailableError,
    _check,
    _check_process,
    _find,
    _run_as_server,
    _server_dir,
    _server_process,
    _wait_until,
    _write_owned,
    free_port,
    psql_tls,
    running_postgres,
)

pytestmark = pytest.mark.real
PASSWORD = "tls-test-password"
ROOT_PASSWORD = "tls-test-root"

Pki = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return server_files(["phase=1", "profiles=standard"], ("mysql", "pgbouncer", "postgres"))


def _binary(name: str) -> str:
    try:
        return _find(name)
    except ServerUnavailableError:
        pytest.skip(f"{name} is installed by .ci/run")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOCALHOST, port)) == 0


# --- MariaDB ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _mariadb_with(files: Mapping[str, str], args: tuple[str, ...]) -> Iterator[MariaDb]:
    """A MariaDB server with extra options (`{base}` in them names its directory), a `tester`
    account on 127.0.0.1 and root on the socket only."""
    server_bin, install_db, client = _binary("mariadbd"), _binary("mariadb-install-db"), _binary("mariadb")
    with _server_dir("devstack-mytls-") as base:
        data, log, sock = base / "data", base / "server.log", base / "mysqld.sock"
        install = [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"]
        _check(_run_as_server([*install, "--skip-test-db"], log), "mariadb-install-db")
        for name, text in files.items():
            _write_owned(base / name, text)
        port = free_port()
        command = [server_bin, "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}"]
        command += [f"--bind-address={LOCALHOST}", "--skip-name-resolve", f"--pid-file={base / 'mysqld.pid'}"]
        command += ["--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0"]
        command += [arg.replace("{base}", str(base)) for arg in args]
        server = MariaDb(client, sock, port, "")
        with _server_process(command, log, signal.SIGTERM) as process:
            _wait_until(lambda: sock.exists() and server.apply("SELECT 1;").returncode == 0, process, log, "mariadbd")
            tester = f"CREATE USER 'tester'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';\n"
            _check_process(server.apply(tester), "creating tester")
            yield server


def _mariadb_client(server: MariaDb, *tls: str) -> subprocess.CompletedProcess[str]:
    args = [server.client, "--no-defaults", "--protocol=TCP", "-h", LOCALHOST, "-P", str(server.port)]
    args += ["-u", "tester", *tls, "--batch", "--skip-column-names", "--connect-timeout=5"]
    args += ["-e", "SHOW SESSION STATUS LIKE 'Ssl_version'"]
    return subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "MYSQL_PWD": PASSWORD},
        check=False,
    )


@pytest.mark.parametrize("mode", [TlsMode.DUAL, TlsMode.REQUIRED])
def test_mariadb(pki: Pki, mode: TlsMode) -> None:
    files = pki["mysql"]
    with _mariadb_with(files, mysql_args(mode, "{base}")) as server:
        root = server.socket.parent / CA_FILE
        secured = _mariadb_client(server, f"--ssl-ca={root}", "--ssl-verify-server-cert")
        assert secured.returncode == 0, secured.stderr
        assert secured.stdout.split() in (["Ssl_version", "TLSv1.3"], ["Ssl_version", "TLSv1.2"])
        plain = _mariadb_client(server, "--skip-ssl")
        if mode is TlsMode.DUAL:
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.split() == ["Ssl_version"]  # no value: plaintext
        else:
            # MySQL 8.0 says ERROR 3159 "Connections using insecure transport are prohibited";
            # MariaDB refuses with ERROR 1045 (the same password just worked over TLS).
            assert plain.returncode != 0
            assert "ERROR 1045" in plain.stderr or "ERROR 3159" in plain.stderr, plain.stderr
        settings = server.apply("SELECT @@tls_version, @@ssl_cipher, @@require_secure_transport;")
        assert settings.stdout.splitlines()[-1].split("\t") == [
            "TLSv1.2,TLSv1.3",
            CIPHERS,
            "1" if mode is TlsMode.REQUIRED else "0",
        ]
        # A client that trusts another CA does not get in.
        untrusted = _mariadb_client(server, "--ssl-ca=/etc/ssl/certs/ca-certificates.crt", "--ssl-verify-server-cert")
        assert untrusted.returncode != 0


# --- PgBouncer in front of PostgreSQL ---------------------------------------------------------


@dataclass(frozen=True)
class PgBouncer:
    port: int
    root: Path
    log: Path


@contextlib.contextmanager
def _pgbouncer(mode: TlsMode, files: Mapping[str, str], postgres_port: int) -> Iterator[PgBouncer]:
    binary = _binary("pgbouncer")  # it refuses to run as root: _server_process runs it as nobody
    with _server_dir("devstack-pgb-") as base:
        for name, text in files.items():
            _write_owned(base / name, text)
        _write_owned(base / "userlist.txt", f'"tester" "{PASSWORD}"\n')
        port, log = free_port(), base / "pgbouncer.log"
        ini = [
            "[databases]",
            f"postgres = host={LOCALHOST} port={postgres_port} dbname=postgres",
            "[pgbouncer]",
            f"listen_addr = {LOCALHOST}",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            f"auth_file = {base}/userlist.txt",
            "pool_mode = session",
            *pgbouncer_ini_lines(mode, str(base)),
        ]
        _write_owned(base / "pgbouncer.ini", "\n".join(ini) + "\n")
        with _server_process([binary, str(base / "pgbouncer.ini")], log, signal.SIGINT) as process:
            _wait_until(lambda: _listening(port), process, log, "pgbouncer")
            yield PgBouncer(port, base / CA_FILE, log)


def _psql(
    bouncer: PgBouncer, sslmode: str, root: Path | None = None, timeout: int = 5
) -> subprocess.CompletedProcess[str]:
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"  # the PgBouncer -> PostgreSQL link
    return psql_tls(bouncer.port, query, password=PASSWORD, sslmode=sslmode, root=root or bouncer.root, timeout=timeout)


@pytest.mark.parametrize("mode", [TlsMode.DUAL, TlsMode.REQUIRED])
def test_pgbouncer(pki: Pki, mode: TlsMode) -> None:
    _binary("pgbouncer")
    _binary("psql")
    with running_postgres(extra_args=postgres_args(TlsMode.DUAL, "{base}"), files=pki["postgres"]) as postgres:
        postgres.admin_query(f"CREATE ROLE tester LOGIN PASSWORD '{PASSWORD}'")
        with _pgbouncer(mode, pki["pgbouncer"], postgres.port) as bouncer:
            verified = _psql(bouncer, "verify-full")
            assert verified.returncode == 0, verified.stderr
            assert verified.stdout.strip() == "t"
            plain = _psql(bouncer, "disable")
            if mode is TlsMode.DUAL:
                assert plain.returncode == 0, plain.stderr
            else:
                assert plain.returncode != 0
                assert "SSL required" in plain.stderr, plain.stderr
        if mode is TlsMode.REQUIRED:
            # A PgBouncer that trusts other CAs refuses PostgreSQL's certificate: it is verified.
            other_cas = {**pki["pgbouncer"], CA_FILE: Path("/etc/ssl/certs/ca-certificates.crt").read_text()}
            with _pgbouncer(mode, other_cas, postgres.port) as bouncer:
                # (sslmode=require without a root certificate: the client itself verifies nothing)
                refused = _psql(bouncer, "require", bouncer.root.parent / "absent.crt", timeout=2)
                assert refused.returncode != 0
                assert "certificate verify failed" in bouncer.log.read_text()
