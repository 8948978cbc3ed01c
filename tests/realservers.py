"""The machinery under the real-server tests: clients for PostgreSQL, MariaDB and Redis, and
running a server process in a temporary directory (tests/shipped.py starts each server with the
plan's files). Every server listens on 127.0.0.1 on a free port (plus a Unix socket in its
directory for the admin, as `docker exec` would use) and is stopped, and its directory removed,
when its context manager exits, whatever happened inside. Run as root (CI), the servers run as
`nobody`: PostgreSQL refuses to run as root. A missing binary raises ServerUnavailableError.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
UNPRIVILEGED_USER = "nobody"


class ServerUnavailableError(RuntimeError):
    """A server binary is not installed here."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


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


def _find(name: str, *extra_dirs: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs, "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerUnavailableError(f"{name} is not installed")
    return found


@dataclass(frozen=True)
class _Identity:
    uid: int
    gid: int


# Set by `hardened`: the catalog's uid:gid, the setpriv line that gives the server what a
# hardened container gives it (no capability at all, no-new-privileges, no extra group), and the
# environment that names the uid (the image's /etc/passwd has it; this host need not).
_HARDENED: list[tuple[_Identity, tuple[str, ...], dict[str, str]]] = []
NSS_WRAPPER = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"


@contextlib.contextmanager
def hardened(uid: int, gid: int) -> Iterator[None]:
    """Servers started inside run as uid:gid under setpriv, as a hardened container runs them.
    Needs root, setpriv (util-linux) and nss_wrapper (libnss-wrapper: initdb looks its uid up)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        raise ServerUnavailableError("hardened servers need root and setpriv (util-linux)")
    if not Path(NSS_WRAPPER).exists():
        raise ServerUnavailableError("hardened servers need nss_wrapper: apt-get install libnss-wrapper")
    names = Path(tempfile.mkdtemp(prefix="dsnss"))
    names.chmod(0o755)
    (names / "passwd").write_text(f"server:x:{uid}:{gid}:server:/nonexistent:/bin/sh\n")
    (names / "group").write_text(f"server:x:{gid}:\n")
    for name in ("passwd", "group"):
        (names / name).chmod(0o644)
    env = {
        "LD_PRELOAD": NSS_WRAPPER,
        "NSS_WRAPPER_PASSWD": str(names / "passwd"),
        "NSS_WRAPPER_GROUP": str(names / "group"),
    }
    prefix = (
        setpriv,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    )
    _HARDENED.append((_Identity(uid, gid), prefix, env))
    try:
        yield
    finally:
        _HARDENED.pop()
        shutil.rmtree(names, ignore_errors=True)


def _launch(args: Sequence[str]) -> tuple[list[str], _Identity | None]:
    """The command line that starts a server, and whom to start it as (None: as we are)."""
    if _HARDENED:
        return [*_HARDENED[-1][1], *args], None  # setpriv, run as root, drops everything itself
    return list(args), _server_identity()


def _server_identity() -> _Identity | None:
    """Whom the servers run as: `nobody` when we are root, else ourselves (None); the hardened
    identity inside `hardened`."""
    if _HARDENED:
        return _HARDENED[-1][0]
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return _Identity(entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def _server_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))  # 0700, and short enough for socket paths
    identity = _server_identity()
    try:
        if identity is not None:
            os.chown(path, identity.uid, identity.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_owned(path: Path, text: str) -> None:
    """Write a file the server's user owns (and only it can read)."""
    path.write_text(text)
    path.chmod(0o600)
    identity = _server_identity()
    if identity is not None:
        os.chown(path, identity.uid, identity.gid)


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL", "REDISCLI"))}
    env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    if _HARDENED:
        env.update(_HARDENED[-1][2])
    if extra:
        env.update(extra)
    return env


def _run_as_server(args: Sequence[str], log: Path) -> subprocess.CompletedProcess[str]:
    command, identity = _launch(args)
    with log.open("a") as out:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT,
            env=_clean_env(),
            user=identity.uid if identity else None,
            group=identity.gid if identity else None,
            extra_groups=[] if identity else None,
            check=False,
        )


@contextlib.contextmanager
def _server_process(
    args: Sequence[str], log: Path, stop_signal: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    command, identity = _launch(args)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_clean_env(env),
            user=identity.uid if identity else None,
            group=identity.gid if identity else None,
            extra_groups=[] if identity else None,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def _wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    *,
    timeout: float = START_TIMEOUT,
    tail_lines: int = 30,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}:\n{_tail(log, tail_lines)}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s:\n{_tail(log, tail_lines)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed with status {result.returncode}:\n{result.stdout}")


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(os.path.realpath(initdb)).parent
    raise ServerUnavailableError("PostgreSQL (postgres, initdb) is not installed")


def _version_key(path: str) -> int:
    version = Path(path).parent.name
    return int(version) if version.isdigit() else 0


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
