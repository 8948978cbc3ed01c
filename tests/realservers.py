"""The machinery under the real-server tests: clients for PostgreSQL, MariaDB and Redis, and
running a server process in a temporary directory (tests/shipped.py starts each server with the
plan's files). Every server listens on 127.0.0.1 on a free port (plus a Unix socket in its
directory for the admin, as `docker exec` would use) and is stopped, and its directory removed,
when its context manager exits, whatever happened inside. Run as root (CI), the servers run as
`nobody`: PostgreSQL refuses to run as root. A missing binary raises ServerUnavailableError.
The process handling itself is tools/servers.py's, shared with the benchmark.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The server-process machinery lives in tools/servers.py (the benchmark runs servers the same
# way); the names the test modules import from here stay as they were.
from tools.servers import LOCALHOST, START_TIMEOUT, ServerUnavailableError, free_port, hardened
from tools.servers import Identity as _Identity
from tools.servers import checked as _check
from tools.servers import clean_env as _clean_env
from tools.servers import find as _find
from tools.servers import postgres_bin as _postgres_bin
from tools.servers import run_as_server as _run_as_server
from tools.servers import server_dir as _server_dir
from tools.servers import server_identity as _server_identity
from tools.servers import server_process as _server_process
from tools.servers import tail as _tail
from tools.servers import wait_until as _wait_until
from tools.servers import write_owned as _write_owned

__all__ = [  # re-exported for the test modules that import them from here
    "LOCALHOST", "START_TIMEOUT", "ServerUnavailableError", "_Identity", "_check", "_clean_env", "_find",
    "_postgres_bin", "_run_as_server", "_server_dir", "_server_identity", "_server_process", "_tail",
    "_wait_until", "_write_owned", "free_port", "hardened",
]  # fmt: skip

COMMAND_TIMEOUT = 30.0


def psql_tls(
    port: int, query: str, *, password: str, sslmode: str, root: Path, timeout: int = 5
) -> subprocess.CompletedProcess[str]:
    """One query as "tester" over TCP with libpq's sslmode and root certificate (no ~/.pgpass)."""
    env = {
        "PATH": os.environ["PATH"],
        "PGPASSWORD": password,
        "PGSSLMODE": sslmode,
        "PGSSLROOTCERT": str(root),
        "PGCONNECT_TIMEOUT": str(timeout),
        "PGPASSFILE": os.devnull,
    }
    connection = ["-h", LOCALHOST, "-p", str(port), "-U", "tester", "-d", "postgres"]
    return subprocess.run(
        [shutil.which("psql") or "psql", "-X", "-qAt", *connection, "-c", query],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        check=False,
    )


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    bin_dir: Path
    socket_dir: Path
    port: int
    admin: str = "postgres"

    def apply(self, script: str, *flags: str) -> subprocess.CompletedProcess[str]:
        """Run a script as the admin over the Unix socket, like `docker exec -i dev-postgres psql`."""
        return subprocess.run(
            [self._psql, "-X", *flags, "-v", "ON_ERROR_STOP=1", "-U", self.admin, "-d", "postgres"],
            input=script,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=_clean_env({"PGHOST": str(self.socket_dir), "PGPORT": str(self.port)}),
            check=False,
        )

    def query(self, sql: str, *, user: str, password: str, database: str) -> subprocess.CompletedProcess[str]:
        """One statement as a client, over TCP with SCRAM (the password in the environment)."""
        connection = ["-h", LOCALHOST, "-p", str(self.port), "-U", user, "-d", database]
        return subprocess.run(
            [self._psql, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", *connection, "-c", sql],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=_clean_env({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", "PGPASSFILE": os.devnull}),
            check=False,
        )

    def admin_query(self, sql: str) -> str:
        result = self.apply(sql + "\n", "-qAt")
        _check_process(result, "admin query")
        return result.stdout.strip()

    @property
    def _psql(self) -> str:
        return str(self.bin_dir / "psql") if (self.bin_dir / "psql").exists() else _find("psql")


def _check_process(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr}")


# --- MariaDB (the MySQL protocol and account statements) ------------------------------------


@dataclass(frozen=True)
class MariaDb:
    client: str
    socket: Path
    port: int
    root_password: str

    def apply(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run a script as root over the socket, MYSQL_PWD in the environment (like docker exec)."""
        return subprocess.run(
            [self.client, "--no-defaults", "-uroot", f"--socket={self.socket}"],
            input=script,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=_clean_env({"MYSQL_PWD": self.root_password}),
            check=False,
        )

    def query(
        self, sql: str, *, user: str, password: str, database: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Statements as a client over TCP (the password in the environment, never in argv)."""
        args = [self.client, "--no-defaults", "--protocol=TCP", "-h", LOCALHOST, "-P", str(self.port), "-u", user]
        args += ["--batch", "--skip-column-names", "--connect-timeout=5", "-e", sql]
        if database is not None:
            args.append(database)
        return subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=_clean_env({"MYSQL_PWD": password}),
            check=False,
        )


# --- Redis ------------------------------------------------------------------------------------


class RedisError(Exception):
    """An error reply (`-NOPERM ...`, `-WRONGPASS ...`)."""


RespValue = str | int | bytes | None | list["RespValue"] | RedisError


class RespConnection:
    """A minimal RESP2 client: enough to send commands and read replies, errors as values."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        """Plaintext, or TLS verified for the name localhost with `tls`."""
        sock = socket.create_connection((LOCALHOST, port), timeout=5)
        self._sock = tls.wrap_socket(sock, server_hostname="localhost") if tls is not None else sock
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def call(self, *args: str) -> RespValue:
        encoded = [a.encode() for a in args]
        frame = b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
        self._sock.sendall(frame)
        return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
        return data

    def _reply(self) -> RespValue:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size)
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line!r}")


@dataclass(frozen=True)
class Redis:
    port: int
    config_text: str

    def connect(self) -> RespConnection:
        return RespConnection(self.port)
