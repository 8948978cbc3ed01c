"""The plan's account steps, run as shipped against Debian's PostgreSQL and MariaDB on 127.0.0.1:
the client command of each `<server>-accounts` step (its `docker exec` line after the container's
name) with the plan's own script on its stdin.

What they prove: PostgreSQL receives a SCRAM verifier, never a password (its statement log and
pg_stat_activity, read while the step is in flight, hold no client's password; every client then
logs in with its own); MySQL's root password is in no process's environment or command line while
the step runs; and neither client prints a line of the script when a statement fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realservers import MariaDb, Postgres, ServerUnavailableError, _clean_env
from tests.shipped import Scratch, scratch, shipped, start_mariadb, start_postgres, vault_secrets

pytestmark = pytest.mark.real

PLAN = ("phase=0", "profiles=standard")
SECRET = "devstack-canary-9f2c51"  # planted in a failing statement: it must not be printed back


def _passwords(system: str) -> dict[str, str]:
    """Each client's password on the server, from the plan's Vault secrets."""
    return {
        secret[f"{system}_user"]: secret[f"{system}_password"]
        for secret in vault_secrets(*PLAN).values()
        if f"{system}_user" in secret
    }


def _wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[Scratch, Postgres]]:
    try:
        with scratch(shipped("postgres", *PLAN)) as s, start_postgres(s, accounts=False) as server:
            yield s, server
    except ServerUnavailableError as missing:
        pytest.skip(f"PostgreSQL missing ({missing}): apt-get install postgresql")


def _pg_step(server: Postgres, cli: list[str]) -> subprocess.Popen[str]:
    """The step's psql, as the container's admin on the server's socket."""
    env = _clean_env({"PGHOST": str(server.socket_dir), "PGPORT": str(server.port)})
    env["PATH"] = f"{server.bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.Popen(
        cli, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_pg_step_sends_verifiers_that_log_every_client_in(pg: tuple[Scratch, Postgres]) -> None:
    s, server = pg
    passwords = _passwords("postgres")
    assert len(passwords) >= 3, passwords
    server.admin_query("ALTER SYSTEM SET log_statement = 'all'")
    server.admin_query("SELECT pg_reload_conf()")
    script = s.shipped.accounts_script or ""
    lines = script.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("ALTER ROLE") and " PASSWORD " in line)
    step = _pg_step(server, s.shipped.accounts_cli())
    assert step.stdin is not None
    try:
        # Up to the first password, then the step waits: its session's last query is on show.
        step.stdin.write("".join(lines[: first + 1]))
        step.stdin.flush()
        seen: list[str] = []

        def shown() -> bool:
            seen[:] = [
                server.admin_query(
                    "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE 'ALTER ROLE%'"
                )
            ]
            return bool(seen[0])

        _wait_for(shown, "the step's ALTER ROLE in pg_stat_activity")
        assert "PASSWORD 'SCRAM-SHA-256$4096:" in seen[0]
        assert not [user for user, password in passwords.items() if password in seen[0]]
        step.stdin.write("".join(lines[first + 1 :]))
        step.stdin.close()
        assert step.wait(timeout=60) == 0, step.stderr.read() if step.stderr else ""
    finally:
        if step.poll() is None:
            step.kill()
            step.wait()
        server.admin_query("ALTER SYSTEM RESET log_statement")
        server.admin_query("SELECT pg_reload_conf()")
    log = (s.root / "server.log").read_text()
    assert log.count("SCRAM-SHA-256$4096:") >= len(passwords), "log_statement did not log the step"
    assert not [user for user, password in passwords.items() if password in log]
    for user, password in passwords.items():
        ok = server.query("SELECT current_user", user=user, password=password, database="postgres")
        assert ok.returncode == 0, (user, ok.stderr)
        assert ok.stdout.strip() == user
        wrong = server.query("SELECT 1", user=user, password=password + "x", database="postgres")
        assert wrong.returncode != 0


def test_pg_step_prints_no_line_of_a_failing_script(pg: tuple[Scratch, Postgres]) -> None:
    _, server = pg
    step = _pg_step(server, pg[0].shipped.accounts_cli())
    out, err = step.communicate(f"SELECT '{SECRET}' FROM;\n", timeout=30)
    assert step.returncode != 0
    assert "42601" in err, err  # the SQLSTATE of a syntax error: the failure is reported
    assert SECRET not in out + err


# --- MariaDB (the mysql container) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def my() -> Iterator[tuple[Scratch, MariaDb]]:
    if shutil.which("mysql") is None:
        pytest.skip("the mysql client is missing: apt-get install mariadb-client")
    try:
        with scratch(shipped("mysql", *PLAN)) as s, start_mariadb(s, accounts=False) as server:
            yield s, server
    except ServerUnavailableError as missing:
        pytest.skip(f"MariaDB missing ({missing}): apt-get install mariadb-server")


def _my_step(s: Scratch, server: MariaDb) -> subprocess.Popen[str]:
    """The step's `sh -c` client; the container's password file is the scratch copy, and the
    server's socket is named in a ~/.my.cnf of the scratch root (Debian's /etc/mysql names its
    own socket, which wins over MYSQL_UNIX_PORT; nothing secret in that file)."""
    cli = [str(s.host(word)) if word.startswith("/run/devstack/") else word for word in s.shipped.accounts_cli()]
    (s.root / ".my.cnf").write_text(f"[client]\nsocket={server.socket}\n")
    env = _clean_env({"HOME": str(s.root)})
    return subprocess.Popen(
        cli, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _processes_holding(secret: str) -> list[str]:
    """Every process whose command line or environment holds `secret` (this test runs as root
    in CI, so it reads every process's environment; elsewhere, those it may read)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                if secret.encode() in (proc / part).read_bytes():
                    found.append(f"{proc.name}/{part}")
            except OSError:
                continue
    return found


def test_my_step_keeps_root_password_out_of_every_process(my: tuple[Scratch, MariaDb]) -> None:
    s, server = my
    assert s.shipped.accounts_step is not None
    assert not s.shipped.accounts_step.get("environment"), "the step's environment holds a secret"
    root = server.root_password
    assert root not in s.shipped.accounts_step["create"]
    script = s.shipped.accounts_script or ""
    step = _my_step(s, server)
    assert step.stdin is not None
    try:
        step.stdin.write(script)
        step.stdin.flush()  # stdin stays open: mysql has logged in and waits for more
        time.sleep(1.0)
        assert step.poll() is None, step.stderr.read() if step.stderr else ""
        assert _processes_holding(root) == []
        step.stdin.close()
        assert step.wait(timeout=60) == 0, step.stderr.read() if step.stderr else ""
    finally:
        if step.poll() is None:
            step.kill()
            step.wait()
    passwords = _passwords("mysql")
    assert passwords
    for user, password in passwords.items():
        ok = server.query("SELECT CURRENT_USER()", user=user, password=password)
        assert ok.returncode == 0, (user, ok.stderr)
        assert ok.stdout.split()[0] == f"{user}@%"


def test_my_step_prints_no_line_of_a_failing_script(my: tuple[Scratch, MariaDb]) -> None:
    s, server = my
    step = _my_step(s, server)
    out, err = step.communicate(f"SELECT 1;\nSELECT '{SECRET}' FROM;\n", timeout=30)
    assert step.returncode != 0
    assert "ERROR 1064 (42000) at line 2" in err, err
    assert SECRET not in out + err


def test_my_step_refuses_without_the_password_file(my: tuple[Scratch, MariaDb]) -> None:
    s, _ = my
    cli = s.shipped.accounts_cli()
    cli[-1] = str(s.root / "missing")
    step = subprocess.run(
        cli, input="SELECT 1;\n", capture_output=True, text=True, timeout=30, check=False, env=_clean_env()
    )
    assert step.returncode != 0
    assert "cannot read" in step.stderr
