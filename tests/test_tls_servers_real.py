"""Real PostgreSQL and Redis servers on 127.0.0.1, configured with the generated TLS settings and
the plan's own certificates: dual mode takes TLS and plaintext, required mode refuses plaintext."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.phases import TlsMode
from devstack.services.postgres import PG_HBA, postgres_args, postgres_files
from devstack.services.redis import redis_lines
from devstack.tls import CA_FILE, KEY_FILE
from tests.planpki import server_files
from tests.realservers import free_port, psql_tls, running_postgres

pytestmark = pytest.mark.real
PASSWORD = "tls-test-password"


@pytest.fixture(scope="module")
def pki() -> dict[str, dict[str, str]]:
    return server_files(["phase=1", "profiles=minimal"], ("postgres", "redis-1"))


def _psql(port: int, sslmode: str, root: Path) -> subprocess.CompletedProcess[str]:
    query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    return psql_tls(port, query, password=PASSWORD, sslmode=sslmode, root=root)


@pytest.mark.parametrize("mode", [TlsMode.DUAL, TlsMode.REQUIRED])
def test_postgres(pki: dict[str, dict[str, str]], mode: TlsMode, tmp_path: Path) -> None:
    if shutil.which("psql") is None:
        pytest.skip("PostgreSQL is installed by .ci/run")
    files = dict(pki["postgres"])
    files |= {Path(name).name: text for name, text in postgres_files(mode, "{base}").items()}
    if mode is TlsMode.REQUIRED:
        assert PG_HBA in files
    root = tmp_path / "root.pem"
    root.write_text(files[CA_FILE])
    with running_postgres(extra_args=postgres_args(mode, "{base}"), files=files) as server:
        server.admin_query(f"CREATE ROLE tester LOGIN PASSWORD '{PASSWORD}'")
        verified = _psql(server.port, "verify-full", root)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.strip() in ("t|TLSv1.3", "t|TLSv1.2")
        plain = _psql(server.port, "disable", root)
        if mode is TlsMode.DUAL:
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.strip() == "f|"
        else:
            assert plain.returncode != 0
            assert "no encryption" in plain.stderr
    # Old protocol versions are refused outright.
    assert "ssl_min_protocol_version=TLSv1.2" in postgres_args(mode)


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="devstack-redis-tls-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _redis_cli(port: int, *tls: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port), *tls, "ping"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env={"PATH": os.environ["PATH"], "REDISCLI_AUTH": PASSWORD},
    )


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.parametrize("mode", [TlsMode.DUAL, TlsMode.REQUIRED])
def test_redis(pki: dict[str, dict[str, str]], mode: TlsMode, redis_dir: Path) -> None:
    server = shutil.which("redis-server")
    if server is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is installed by .ci/run")
    for name, text in pki["redis-1"].items():
        (redis_dir / name).write_text(text)
    (redis_dir / KEY_FILE).chmod(0o600)
    plain, tls_port = free_port(), free_port()
    conf = ["bind 127.0.0.1", f"dir {redis_dir}", f"requirepass {PASSWORD}", "save ''"]
    conf += redis_lines(mode, plain, tls_port, str(redis_dir))
    (redis_dir / "redis.conf").write_text("\n".join(conf) + "\n")
    process = subprocess.Popen([server, str(redis_dir / "redis.conf")], stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(tls_port)
        tls = ("--tls", "--cacert", str(redis_dir / CA_FILE), "--sni", "localhost")
        secured = _redis_cli(tls_port, *tls)
        assert secured.stdout.strip() == "PONG", secured.stdout + secured.stderr
        # A client that does not trust the CA is refused.
        untrusted = _redis_cli(tls_port, "--tls", "--cacert", "/etc/ssl/certs/ca-certificates.crt")
        assert untrusted.stdout.strip() != "PONG"
        cleartext = _redis_cli(plain)
        if mode is TlsMode.DUAL:
            assert cleartext.stdout.strip() == "PONG"
        else:
            assert cleartext.stdout.strip() != "PONG"
            assert "refused" in (cleartext.stdout + cleartext.stderr).lower()
    finally:
        process.terminate()
        process.wait(timeout=10)
