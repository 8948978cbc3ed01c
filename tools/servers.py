"""Debian's servers run as plain processes on 127.0.0.1, for the benchmark (tools.bench) and the
real-server tests (tests/realservers.py, tests/shipped.py): finding a binary, a free port, a
temporary directory the server owns, running it in a session of its own, waiting until it is
ready and stopping it whatever happened, and, for the benchmark, a memory cgroup with its
container's limit where this machine lets us make one.

Run as root (CI), the servers run as `nobody`: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
UNPRIVILEGED_USER = "nobody"
HIGHEST_PORT = 55000  # a Redis node's cluster bus is its port + 10000


class ServerUnavailableError(RuntimeError):
    """A server or client binary is not installed here (the message says which)."""


def find(name: str, *extra_dirs: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs, "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerUnavailableError(f"{name} is not installed (see .ci/apt-packages)")
    return found


def postgres_bin() -> Path:
    """The newest PostgreSQL's bin directory (Debian keeps the server off PATH)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(os.path.realpath(initdb)).parent
    raise ServerUnavailableError("PostgreSQL (postgres, initdb) is not installed (see .ci/apt-packages)")


def _version_key(path: str) -> int:
    version = Path(path).parent.name
    return int(version) if version.isdigit() else 0


_ISSUED: set[int] = set()  # ports this process has handed out: a server may not have bound one yet


def free_port() -> int:
    """A port nothing listens on now and this process has not handed out before (two servers
    started together, each told a port before either binds, must not be told the same one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port = sock.getsockname()[1]
        if port < HIGHEST_PORT and port not in _ISSUED:
            _ISSUED.add(port)
            return port


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((LOCALHOST, port)) == 0


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


# Set by `hardened`: the catalog's uid:gid, the setpriv line that gives the server what a
# hardened container gives it (no capability at all, no-new-privileges, no extra group), and the
# environment that names the uid (the image's /etc/passwd has it; this host need not).
_HARDENED: list[tuple[Identity, tuple[str, ...], dict[str, str]]] = []
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
    _HARDENED.append((Identity(uid, gid), prefix, env))
    try:
        yield
    finally:
        _HARDENED.pop()
        shutil.rmtree(names, ignore_errors=True)


def _launch(args: Sequence[str]) -> tuple[list[str], Identity | None]:
    """The command line that starts a server, and whom to start it as (None: as we are)."""
    if _HARDENED:
        return [*_HARDENED[-1][1], *args], None  # setpriv, run as root, drops everything itself
    return list(args), server_identity()


def server_identity() -> Identity | None:
    """Whom the servers run as: `nobody` when we are root, else ourselves (None); the hardened
    identity inside `hardened`."""
    if _HARDENED:
        return _HARDENED[-1][0]
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return Identity(entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory the server's user owns (0700, short enough for socket paths)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    identity = server_identity()
    try:
        if identity is not None:
            os.chown(path, identity.uid, identity.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_owned(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file the server's user owns (by default only it can read)."""
    path.write_text(text)
    path.chmod(mode)
    identity = server_identity()
    if identity is not None:
        os.chown(path, identity.uid, identity.gid)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without the clients' own settings (PG*, MYSQL*, REDISCLI*), in C.UTF-8."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL", "REDISCLI"))}
    env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    if _HARDENED:
        env.update(_HARDENED[-1][2])
    if extra:
        env.update(extra)
    return env


def run_as_server(args: Sequence[str], log: Path) -> subprocess.CompletedProcess[str]:
    """A one-off command as the server's user (initdb, mariadb-install-db), output to the log."""
    command, identity = _launch(args)
    with log.open("a") as out:
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT * 2,
            env=clean_env(),
            user=identity.uid if identity else None,
            group=identity.gid if identity else None,
            extra_groups=[] if identity else None,
            check=False,
        )


def checked(result: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed with status {result.returncode}:\n{result.stdout}")
    return result


@contextlib.contextmanager
def server_process(
    args: Sequence[str],
    log: Path,
    stop_signal: int = signal.SIGTERM,
    limit: Limit | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The server in a session of its own (in `limit`'s cgroup, if given), as the server's user.
    On the way out it gets `stop_signal`, then, after STOP_TIMEOUT, its whole session SIGKILL."""
    command, identity = _launch(limit.wrap(args) if limit else args)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(env),
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
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Not reaped yet, so its session id is still its own: the whole session goes.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        if limit is not None:
            limit.close()


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    *,
    timeout: float = START_TIMEOUT,
    tail_lines: int = 30,
) -> None:
    """Until `ready()`; fails with the log's last lines if the server exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}:\n{tail(log, tail_lines)}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s:\n{tail(log, tail_lines)}")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- memory limits (the benchmark) -------------------------------------------------------------


def _memory_cgroup_root(proc_cgroup: Path = Path("/proc/self/cgroup")) -> Path | None:
    """Our own cgroup-v1 memory group, if we may make children in it (they get a limit)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            root = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return root if os.access(root, os.W_OK) else None
    return None


def cgroups_available() -> bool:
    return _memory_cgroup_root() is not None


class Limit:
    """A memory cgroup with a limit, entered by the server's process before it execs; without
    cgroups here, nothing (the servers' own settings are then their only limit)."""

    def __init__(self, limit_mb: int, root: Path | None = None) -> None:
        self.limit_mb = limit_mb
        self.path: Path | None = None
        root = root if root is not None else _memory_cgroup_root()
        if root is None:
            return
        path = Path(tempfile.mkdtemp(prefix="devstack-bench-", dir=root))
        (path / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
        identity = server_identity()
        if identity is not None:  # the server's own user moves itself in
            os.chown(path, identity.uid, identity.gid)
            os.chown(path / "cgroup.procs", identity.uid, identity.gid)
        self.path = path

    def wrap(self, argv: Sequence[str]) -> list[str]:
        if self.path is None:
            return list(argv)
        # The shell joins the group, then becomes the server: every process it forks stays in it.
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path), *argv]

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
