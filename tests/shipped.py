"""The plan's own containers, materialised for real servers on 127.0.0.1.

`shipped(service, *overrides)` takes one container from the offline plan (tools.engine on the
mock engine, stack `dev`, `--set`-style overrides for the phase, profile or TLS mode) with the
real values of its secrets. `Scratch` writes exactly its uploads (path, content, mode) under a
scratch root, then runs the shipped entrypoint wrapper against a fake Vault API holding the
plan's secret, so that what it hands over (one file per key in DEVSTACK_SECRETS_DIR, each
DEVSTACK_TEMPLATES entry rendered) is the wrapper's own work. The `start_*` functions run the
Debian server with those files and the container's own arguments.

A loopback test must change a few things, all listed in MAPPINGS below: the container's
directories move under the scratch root, files belong to the server's user, each container port
becomes a free port of 127.0.0.1, a listener on 0.0.0.0 listens on 127.0.0.1 and another
container's name and port become 127.0.0.1 and that server's test port. Every line of the
shipped files that names a container port must be covered by a rule, or the server does not
start: a new setting cannot slip past unmapped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.catalog import SERVICES_BY_NAME
from devstack.phases import TlsMode
from devstack.settings import load_settings
from tests import plancache
from tests.fakevault import FakeVault
from tests.realservers import (
    LOCALHOST,
    MariaDb,
    Postgres,
    _check,
    _check_process,
    _find,
    _postgres_bin,
    _run_as_server,
    _server_dir,
    _server_identity,
    _server_process,
    _wait_until,
    free_port,
)
from tools.engine import PlanRun, unwrap

CONTAINER = "docker:index/container:Container"
WRAPPER = "/devstack/entrypoint.sh"
# The wrapper's login settings: here it logs in to the fake Vault with a token over HTTP.
WRAPPER_LOGIN = frozenset(
    {"VAULT_ADDR", "DEVSTACK_AUTH", "DEVSTACK_TOKEN_FILE", "DEVSTACK_ROLE_ID_FILE", "DEVSTACK_SECRET_ID_FILE"}
    | {"DEVSTACK_VAULT_CA"}
)
COMMAND = "command:local:Command"
SECRET_V2 = "vault:kv/secretV2:SecretV2"

# Container directories that live under the scratch root (every path the shipped files name
# that a test's server reads or writes). Longest first, so /run/devstack is not read as /run.
MOVED_DIRS = (
    "/etc/pgbouncer",
    "/etc/prometheus",
    "/etc/rabbitmq",
    "/run/devstack",
    "/devstack",
    "/prometheus",
    "/data",
)

# Every difference between a container and its loopback stand-in, and where it is made. Nothing
# else of the plan's files, arguments or secrets is changed.
MAPPINGS = {
    "paths": "the container's directories (MOVED_DIRS) live under the scratch root (Scratch.moved)",
    "owner": "files the image's users own belong to the server's user, nobody when run as root",
    "ports": "each container port of the service is a free port of 127.0.0.1 (LOOPBACK_RULES)",
    "listen": "0.0.0.0, or an image's every-address default, becomes 127.0.0.1 (LOOPBACK_RULES, "
    "start_postgres, start_mariadb, the Prometheus and RabbitMQ tests)",
    "peers": "another container's name and port become 127.0.0.1 and its test port (LOOPBACK_RULES)",
    "absent": "a scrape or alert target the test does not start is 127.0.0.1 port 9, where nothing "
    "listens: it is down here, and no container name is ever looked up (LOOPBACK_RULES)",
    "announce": "a Redis node announces 127.0.0.1 instead of its static address (LOOPBACK_RULES)",
    "versions": "a setting Debian's older server lacks is commented out, naming the version (LOOPBACK_RULES)",
    "wrapper": "the shipped entrypoint wrapper logs in to a fake Vault on 127.0.0.1 with a token over "
    "HTTP and chowns to the server's user (Scratch._hand_over)",
    "image": "what the image's own entrypoint does first (initdb with the user and password files, "
    "root on the socket only, Redis's default port) is done by the start_* function",
    "speed": "PostgreSQL and MariaDB run without fsync and with small buffers (start_postgres, start_mariadb)",
}


@dataclass(frozen=True)
class Upload:
    path: str
    content: str
    mode: int


@dataclass(frozen=True)
class Shipped:
    """One container of a plan, secrets revealed (for feeding servers, never for printing)."""

    service: str
    overrides: tuple[str, ...]
    tls: TlsMode  # the TLS mode the plan's settings give this phase and features
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    env: Mapping[str, str]
    uploads: Mapping[str, Upload] = field(repr=False)
    published: tuple[Mapping[str, Any], ...]  # the container's `ports` entries
    vault_secret: Mapping[str, str] = field(repr=False)  # what the wrapper reads at DEVSTACK_SECRET_PATH
    accounts_script: str | None = field(repr=False)  # the stdin of the `<service>-accounts` step, if any
    accounts_step: Mapping[str, Any] | None = None  # that step's other inputs (create, environment...)

    def text(self, path: str) -> str:
        return self.uploads[path].content

    def args_after(self, program: str) -> list[str]:
        """The arguments after the image's program (e.g. after `postgres`): in the command, or in
        the entrypoint itself for an image that runs without the wrapper (uploaded secrets)."""
        argv = self.entrypoint + self.command
        return list(argv[argv.index(program) + 1 :])

    def container_ports(self) -> list[int]:
        return [port.container for port in SERVICES_BY_NAME[self.service].ports]

    def accounts_cli(self) -> list[str]:
        """What the accounts step runs in the container: its `docker exec` line after the
        container's name (and the user it runs as, which a loopback test does not change)."""
        if self.accounts_step is None:
            raise ValueError(f"{self.service} has no accounts step")
        words = shlex.split(self.accounts_step["create"])
        container = SERVICES_BY_NAME[self.service].container_name
        return words[words.index(container) + 1 :]


def shipped(service: str, *overrides: str) -> Shipped:
    run = plan_run(*overrides)
    inputs = unwrap(run.one(CONTAINER, service).inputs)
    env = dict(entry.split("=", 1) for entry in inputs.get("envs", []))
    secrets = _secrets_of(run)
    accounts = [r for r in run.by_type(COMMAND) if r.name == f"{service}-accounts"]
    return Shipped(
        service=service,
        overrides=tuple(overrides),
        tls=load_settings(run.config, stack=run.stack).features.tls,
        entrypoint=tuple(inputs.get("entrypoints", [])),
        command=tuple(inputs.get("command", [])),
        env=env,
        uploads={
            u["file"]: Upload(u["file"], u["content"], int(u.get("permissions", "0644"), 8))
            for u in inputs.get("uploads", [])
        },
        published=tuple(inputs.get("ports", [])),
        vault_secret=secrets.get(env.get("DEVSTACK_SECRET_PATH", ""), {}),
        accounts_script=unwrap(accounts[0].inputs["stdin"]) if accounts else None,
        accounts_step={k: v for k, v in accounts[0].inputs.items() if k != "stdin"} if accounts else None,
    )


def vault_secrets(*overrides: str) -> dict[str, dict[str, str]]:
    """Every Vault KV secret of the plan by name: the credentials each client is given."""
    return _secrets_of(plan_run(*overrides))


def _secrets_of(run: PlanRun) -> dict[str, dict[str, str]]:
    return {r.inputs["name"]: json.loads(unwrap(r.inputs["dataJson"])) for r in run.by_type(SECRET_V2)}


def plan_run(*overrides: str) -> PlanRun:
    """The plan `shipped` reads (the session's shared one), for tests that need other resources of it."""
    return plancache.shared_plan(*overrides)


# --- the loopback rules ----------------------------------------------------------------------

Rewrite = Callable[[re.Match[str], "Scratch"], str]


def _port(prefix: str) -> Rewrite:
    return lambda m, s: f"{prefix}{s.port(int(m[1]))}" if m[1] != "0" else m[0]


def _apply(replace: Rewrite, s: Scratch, match: re.Match[str]) -> str:
    return replace(match, s)


LOOPBACK_RULES: dict[str, list[tuple[str, Rewrite]]] = {
    "redis": [
        (r"^bind 0\.0\.0\.0$", lambda m, s: f"bind {' '.join(s.listen)}"),
        (r"^port (\d+)$", _port("port ")),
        (r"^tls-port (\d+)$", _port("tls-port ")),
        (r"^cluster-announce-ip \S+$", lambda m, s: f"cluster-announce-ip {LOCALHOST}"),
    ],
    "pgbouncer": [
        (r"^listen_addr = 0\.0\.0\.0$", lambda m, s: f"listen_addr = {LOCALHOST}"),
        (r"^listen_port = (\d+)$", _port("listen_port = ")),
        (r"host=postgres port=5432", lambda m, s: f"host={LOCALHOST} port={s.peers['postgres']}"),
        # Debian 12's PgBouncer 1.18 predates auth_dbname (1.20; the image runs 1.25): without it
        # the auth_query runs in the client's database, so the tests connect to that database.
        (r"^auth_dbname = \S+$", lambda m, s: m[0] if pgbouncer_version() >= (1, 20) else f"; {m[0]} (1.20+)"),
    ],
    "rabbitmq": [
        (r"^listeners\.ssl\.default = (\d+)$", lambda m, s: f"listeners.ssl.default = {LOCALHOST}:{s.port(int(m[1]))}"),
        (r"^((?:management|prometheus)\.(?:tcp|ssl)\.port) = (\d+)$", lambda m, s: f"{m[1]} = {s.port(int(m[2]))}"),
    ],
    # The exporter's my.cnf, rendered by the shipped wrapper (devstack.services.database_exporters).
    "mysql-exporter": [
        (r"^host = mysql$", lambda m, s: f"host = {LOCALHOST}"),
        (r"^port = 3306$", lambda m, s: f"port = {s.peers['mysql']}"),
    ],
    "prometheus": [
        (r"localhost:9090", lambda m, s: f"localhost:{s.port(9090)}"),
        # prometheus.yml's targets (devstack.monitoring): itself as localhost (a name its
        # certificate carries), a started peer at its test port, any other target absent.
        (r"^(\s*- )([a-z][a-z0-9-]*):(\d+)$", lambda m, s: m[1] + _target(s, m[2], int(m[3]))),
    ],
}
ABSENT_PORT = 9  # discard: nothing listens on it here


def _target(s: Scratch, name: str, port: int) -> str:
    if name == s.shipped.service:
        return f"localhost:{s.port(port)}"
    if name in s.peers:
        return f"{LOCALHOST}:{s.peers[name]}"
    return f"{LOCALHOST}:{ABSENT_PORT}"


KIND = {"redis-1": "redis", "redis-2": "redis", "redis-3": "redis"}


@dataclass
class Scratch:
    """A container's files under `root`, with the loopback rules of its service kind."""

    shipped: Shipped
    root: Path
    ports: dict[int, int] = field(default_factory=dict)  # container port -> 127.0.0.1 port
    peers: dict[str, int] = field(default_factory=dict)  # other container -> its test port
    # The addresses a wildcard listener listens on here: loopback, or a test's own network too.
    listen: tuple[str, ...] = (LOCALHOST,)
    # Vault values a test sets itself (e.g. its own users' ACL): the files come from the plan.
    secret_overrides: dict[str, str] = field(default_factory=dict, repr=False)

    def port(self, container_port: int) -> int:
        if container_port not in self.ports:
            raise AssertionError(f"{self.shipped.service}: port {container_port} is not one of its ports")
        return self.ports[container_port]

    def host(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    @property
    def rules(self) -> list[tuple[str, Rewrite]]:
        kind = KIND.get(self.shipped.service, self.shipped.service)
        return LOOPBACK_RULES.get(kind, [])

    def moved(self, text: str) -> str:
        """Container paths under MOVED_DIRS as paths under the root."""
        pattern = "|".join(re.escape(d) for d in MOVED_DIRS)
        return re.sub(rf"(?<![\w./-])({pattern})(?=/|\b|$)", lambda m: str(self.root) + m[1], text)

    def rewrite(self, text: str) -> str:
        return "\n".join(self.moved(self._loopback(line)) for line in text.split("\n"))

    def _loopback(self, line: str) -> str:
        for pattern, replace in self.rules:
            line = re.sub(pattern, functools.partial(_apply, replace, self), line)
        return line

    def arg(self, value: str) -> str:
        return self.rewrite(value)

    def materialise(self) -> Scratch:
        for upload in self.shipped.uploads.values():
            self._write(self.host(upload.path), self.as_written(upload), upload.mode)
        self._hand_over()
        return self

    def as_written(self, upload: Upload) -> str:
        """The upload with the loopback rules applied: to the servers' configuration files only;
        the wrapper script and the certificates and keys are written byte for byte."""
        if upload.path == WRAPPER or "-----BEGIN " in upload.content:
            return upload.content
        return self.rewrite(upload.content)

    def check_rules(self, *texts: str) -> None:
        """No container port left in a shipped text outside the rules, no wildcard listener."""
        numbers = "|".join(str(p) for p in self.ports)
        for text in texts:
            for line in self.rewrite(text).splitlines():
                if line.lstrip().startswith(("#", ";")) or not numbers:
                    continue
                assert not re.search(rf"(?<![\d.:/-])({numbers})(?!\d)", line), (
                    f"{self.shipped.service}: a container port left unmapped in {line!r}"
                )
                assert "0.0.0.0" not in line, f"{self.shipped.service}: listens beyond loopback: {line!r}"

    def _hand_over(self) -> None:
        """What the entrypoint wrapper writes before it execs the server, written by the shipped
        wrapper itself: it runs (busybox sh) against a fake Vault API on 127.0.0.1 that holds the
        plan's secret, and execs `true`. Its login here is a token over HTTP whatever the phase
        (the AppRole and HTTPS logins are tested in test_entrypoint_*_sh.py), and the files go
        to the server's user."""
        env = self.shipped.env
        if "DEVSTACK_SECRET_PATH" not in env:
            return
        secret = {**self.shipped.vault_secret, **self.secret_overrides}
        run_env = {k: self.moved(v) for k, v in env.items() if k not in WRAPPER_LOGIN}
        identity = _server_identity()
        if "DEVSTACK_SECRETS_OWNER" in env:
            del run_env["DEVSTACK_SECRETS_OWNER"]
        if identity is not None:  # root: the wrapper chowns (the image's user is the server's)
            run_env["DEVSTACK_SECRETS_OWNER"] = f"{identity.uid}:{identity.gid}"
        shell = [_find("busybox"), "sh"] if shutil.which("busybox") else ["sh"]
        with FakeVault() as vault:
            token_file = self.root / "vault-token"
            token_file.write_text(vault.ready() + "\n")
            token_file.chmod(0o400)
            vault.put_secret(env["DEVSTACK_SECRET_PATH"], secret)
            run_env |= {"VAULT_ADDR": vault.address, "DEVSTACK_TOKEN_FILE": str(token_file)}
            run_env |= {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DEVSTACK_WAIT_SECONDS": "10"}
            result = subprocess.run(
                [*shell, str(self.host(WRAPPER)), "true"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=run_env,
                timeout=60,
                check=False,
            )
            token_file.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"the shipped entrypoint wrapper failed: {result.stderr.strip()}")
        for entry in run_env.get("DEVSTACK_TEMPLATES", "").split():  # the loopback rules apply
            rendered = Path(entry.split(":")[1])
            text = rendered.read_text()
            if self.rewrite(text) != text:
                rendered.write_text(self.rewrite(text))

    def directory(self, container_path: str) -> Path:
        """A directory of the container (a volume's mount point), the server's to write in."""
        path = self.host(container_path)
        self._make_dirs(path)
        return path

    def _make_dirs(self, path: Path) -> None:
        identity = _server_identity()
        missing = [d for d in [path, *path.parents] if not d.exists()]
        for directory in reversed(missing):  # new directories only: a data directory keeps its mode
            directory.mkdir(mode=0o755)
            if identity is not None:
                os.chown(directory, identity.uid, identity.gid)

    def _write(self, path: Path, text: str, mode: int) -> None:
        identity = _server_identity()
        self._make_dirs(path.parent)
        path.write_text(text)
        path.chmod(mode)
        if identity is not None:
            os.chown(path, identity.uid, identity.gid)


@contextlib.contextmanager
def scratch(
    shipped: Shipped,
    peers: Mapping[str, int] | None = None,
    ports: Mapping[int, int] | None = None,
    secret_overrides: Mapping[str, str] | None = None,
    listen: Sequence[str] = (LOCALHOST,),
) -> Iterator[Scratch]:
    """A fresh root (removed afterwards) holding the container's materialised files."""
    with _server_dir(f"devstack-{shipped.service}-") as root:
        chosen = dict(ports or {})
        for container_port in shipped.container_ports():
            chosen.setdefault(container_port, _loopback_port())
        overrides = dict(secret_overrides or {})
        yield Scratch(shipped, root, chosen, dict(peers or {}), tuple(listen), overrides).materialise()


def _loopback_port() -> int:
    # Redis's cluster bus is port + 10000: keep ports below 55535.
    while (port := free_port()) >= 55000:
        pass
    return port


@functools.cache
def pgbouncer_version() -> tuple[int, int]:
    answer = subprocess.run([_find("pgbouncer"), "--version"], capture_output=True, text=True, timeout=30, check=True)
    found = re.search(r"PgBouncer (\d+)\.(\d+)", answer.stdout)
    assert found is not None, answer.stdout
    return int(found[1]), int(found[2])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOCALHOST, port)) == 0


def _log(s: Scratch) -> Path:
    return s.root / "server.log"


# --- the servers -----------------------------------------------------------------------------


@contextlib.contextmanager
def start_redis(s: Scratch, test_defaults: Sequence[str] = ()) -> Iterator[Scratch]:
    """redis-server with the shipped redis.conf (the command's own argument); `test_defaults`
    are lines a test adds before it (the shipped file wins where it says otherwise)."""
    server = _find("redis-server")
    (conf,) = s.shipped.args_after("redis-server")
    s.check_rules(s.shipped.text(conf))
    # Redis's own default port, mapped, stated before the shipped file (which may override it):
    # a shipped file that says nothing about `port` listens on the container's 6379.
    defaults = s.root / "defaults.conf"
    s._write(defaults, "\n".join([f"port {s.port(6379)}", *test_defaults, f"include {s.arg(conf)}", ""]), 0o400)
    args = [server, str(defaults)]
    s.directory("/data")
    ports = [s.port(p) for p in s.shipped.container_ports() if f"port {p}" in s.shipped.text(conf)]
    with _server_process(args, _log(s), signal.SIGTERM) as process:
        _wait_until(lambda: all(listening(p) for p in ports), process, _log(s), "redis-server")
        yield s


@contextlib.contextmanager
def start_postgres(s: Scratch, *, accounts: bool = True) -> Iterator[Postgres]:
    """initdb as the image's entrypoint does (the user and password from the files the plan's
    environment names), then postgres with the container's arguments and the plan's accounts."""
    bin_dir = _postgres_bin()
    env = s.shipped.env
    user = s.host(env["POSTGRES_USER_FILE"]).read_text()
    password_file = s.host(env["POSTGRES_PASSWORD_FILE"])
    data, log = s.root / "pgdata", _log(s)
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={password_file}", "-E", "UTF8"]
    _check(_run_as_server([*initdb, "--no-locale", "--no-sync", "--auth-local=trust"], log), "initdb")
    # The image's pg_hba as a client on the network meets it: the socket trusted, TCP by SCRAM
    # (its 127.0.0.1 trust lines are for processes inside the container, which this test is not).
    s._write(data / "pg_hba.conf", "local all all trust\nhost all all all scram-sha-256\n", 0o600)
    port = s.port(5432)
    # Test speed first: the shipped arguments after them win (the tuned sizes from phase 3).
    args = [str(bin_dir / "postgres"), "-D", str(data), "-c", "fsync=off"]
    args += ["-c", "max_connections=30", "-c", "shared_buffers=16MB"]
    args += list(map(s.arg, s.shipped.args_after("postgres")))
    # The image listens on every address of the container; here 127.0.0.1 on the test's port.
    args += ["-p", str(port), "-k", str(s.root), "-c", f"listen_addresses={LOCALHOST}"]
    s.check_rules(*s.shipped.args_after("postgres"))
    server = Postgres(bin_dir, s.root, port, admin=user)
    with _server_process(args, log, signal.SIGINT) as process:
        _wait_until(lambda: server.apply("SELECT 1;").returncode == 0, process, log, "postgres")
        database = s.host(env["POSTGRES_DB_FILE"]).read_text()
        server.admin_query(f'CREATE DATABASE "{database}"')
        if accounts and s.shipped.accounts_script:
            _check_process(server.apply(s.shipped.accounts_script, "-q"), "the plan's accounts script")
        yield server


@contextlib.contextmanager
def start_pgbouncer(s: Scratch) -> Iterator[Scratch]:
    binary = _find("pgbouncer")  # it refuses to run as root: _server_process runs it as nobody
    (ini,) = s.shipped.args_after("/usr/bin/pgbouncer")
    s.check_rules(s.shipped.text(ini))
    with _server_process([binary, s.arg(ini)], _log(s), signal.SIGINT) as process:
        _wait_until(lambda: listening(s.port(5432)), process, _log(s), "pgbouncer")
        yield s


def _sql_literal(value: str) -> str:
    """A MySQL string literal (backslashes and quotes escaped) for the image's root password."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextlib.contextmanager
def start_mariadb(s: Scratch, *, accounts: bool = True) -> Iterator[MariaDb]:
    """mariadbd for the mysql image: root with the password file the plan's environment names,
    the container's arguments after `mysqld`, then the plan's accounts script as root."""
    server_bin, install_db = _find("mariadbd"), _find("mariadb-install-db")
    client = _find("mariadb")
    data, log, sock = s.root / "mysql", _log(s), s.root / "mysqld.sock"
    install = [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal"]
    _check(_run_as_server([*install, "--skip-test-db"], log), "mariadb-install-db")
    args = [server_bin, "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={s.port(3306)}"]
    args += [f"--bind-address={LOCALHOST}", "--skip-name-resolve", f"--pid-file={s.root / 'mysqld.pid'}"]
    args += ["--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0"]
    args += [s.arg(a) for a in s.shipped.args_after("mysqld")]
    s.check_rules(*s.shipped.args_after("mysqld"))
    root_password = s.host(s.shipped.env["MYSQL_ROOT_PASSWORD_FILE"]).read_text()
    bootstrap = MariaDb(client, sock, s.port(3306), "")
    with _server_process(args, log, signal.SIGTERM) as process:
        _wait_until(lambda: sock.exists() and bootstrap.apply("SELECT 1;").returncode == 0, process, log, "mariadbd")
        # As the image: root only on the socket, with the password.
        secure = (
            "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';\nFLUSH PRIVILEGES;\n"
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY {_sql_literal(root_password)};\n"
        )
        _check_process(bootstrap.apply(secure), "securing root")
        server = MariaDb(client, sock, s.port(3306), root_password)
        if accounts and s.shipped.accounts_script:
            _check_process(server.apply(s.shipped.accounts_script), "the plan's accounts script")
        yield server
