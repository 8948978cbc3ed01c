"""Debian's servers for the benchmark, on 127.0.0.1 only, each in a temporary directory and,
where this machine lets us, in a memory cgroup with its container's limit from the plan."""

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 60.0


class UnavailableError(RuntimeError):
    """A server or client this benchmark needs is not installed (the message says which)."""


def find(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if found is None:
        raise UnavailableError(f"{name} is not installed (see .ci/apt-packages)")
    return found


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise UnavailableError("postgresql is not installed (see .ci/apt-packages)")
    return Path(found[-1]).parent


def free_port() -> int:
    # below 55000: a Redis node's cluster bus is its port + 10000
    while True:
        with socket.socket() as sock:
            sock.bind((LOCALHOST, 0))
            port = sock.getsockname()[1]
        if port < 55000:
            return port


def _identity() -> tuple[int, int] | None:
    """Servers run as `nobody` when we are root (PostgreSQL refuses root), else as ourselves."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _memory_cgroup_root() -> Path | None:
    """Our own cgroup-v1 memory group (children of it get a limit), or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            root = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return root if os.access(root, os.W_OK) else None
    return None


class Limit:
    """A memory cgroup with a limit, entered by each server's process before it execs."""

    def __init__(self, limit_mb: int) -> None:
        self.limit_mb = limit_mb
        self.path: Path | None = None
        root = _memory_cgroup_root()
        if root is None:
            return
        path = Path(tempfile.mkdtemp(prefix="devstack-bench-", dir=root))
        (path / "memory.limit_in_bytes").write_text(str(limit_mb * 1024 * 1024))
        identity = _identity()
        if identity is not None:  # the server's own user moves itself in
            os.chown(path, *identity)
            os.chown(path / "cgroup.procs", *identity)
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


def cgroups_available() -> bool:
    return _memory_cgroup_root() is not None


class Server:
    def __init__(self, base: Path, port: int) -> None:
        self.base, self.port = base, port
        self.log = base / "server.log"


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    identity = _identity()
    try:
        if identity is not None:
            os.chown(path, *identity)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)
    identity = _identity()
    if identity is not None:
        os.chown(path, *identity)


def run_as_server(argv: Sequence[str], log: Path) -> None:
    identity = _identity()
    with log.open("a") as out:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=identity[0] if identity else None,
            group=identity[1] if identity else None,
            extra_groups=[] if identity else None,
            timeout=START_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def process(argv: Sequence[str], log: Path, ready: Callable[[], bool], limit: Limit | None = None) -> Iterator[None]:
    """The server in a session of its own; stopped (TERM, then KILL) whatever happens."""
    identity = _identity()
    wrapped = limit.wrap(argv) if limit else list(argv)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            wrapped,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=identity[0] if identity else None,
            group=identity[1] if identity else None,
            extra_groups=[] if identity else None,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        if limit is not None:
            limit.close()


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((LOCALHOST, port)) == 0
