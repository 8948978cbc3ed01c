"""A real RabbitMQ node (Debian's rabbitmq-server) on 127.0.0.1 with exactly the files of the
plan's rabbitmq container (tests/shipped.py: 30-devstack-tls.conf, the main file the wrapper
renders with the admin, the certificates), at phase 1 (dual) and 4 (required): AMQPS verifies
for the name localhost and answers AMQP, TLS 1.2 takes only the listed AEAD suites in the
server's order, TLS 1.1 is refused, the management UI and the Prometheus endpoint are HTTPS
beside HTTP (dual) or HTTPS alone on their ports with plaintext AMQP closed (required), and the
management API takes the admin with its own password only.

The node is a private one: its own directories, node name, free ports, an epmd of its own on
127.0.0.1, and nothing of the system's service (/etc/rabbitmq, /var/lib/rabbitmq) is read. Only
the listed mappings of tests/shipped.py change the plan's text; a conf.d file of the test's own
adds the HTTP listeners' loopback address."""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from devstack.phases import TlsMode
from devstack.tls import CA_FILE
from tests.realservers import (
    LOCALHOST,
    _Identity,
    _server_identity,
    _tail,
    _wait_until,
    _write_owned,
    free_port,
)
from tests.shipped import Shipped, scratch, shipped, vault_secrets

pytestmark = pytest.mark.real

START_TIMEOUT = 90.0
LOG_LINES = 60  # shown when the node fails to start: it says much
STOP_TIMEOUT = 30.0
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"  # AMQP 0-9-1
SERVER_NAME = "localhost"
CBC_SUITES = ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA")  # Erlang's defaults allow both
TLS_CONF = "30-devstack-tls.conf"  # the plan's conf.d file
GCM_SUITES = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384")


@dataclass(frozen=True)
class Node:
    mode: TlsMode
    amqp: int  # plaintext AMQP: open in dual mode, closed once TLS is required
    amqps: int
    management: int  # HTTP in dual mode, HTTPS once TLS is required (the container's 15672)
    management_tls: int | None  # HTTPS beside HTTP in dual mode (15671)
    metrics: int  # the Prometheus endpoint: HTTP in dual mode, HTTPS once TLS is required (15692)
    metrics_tls: int | None  # HTTPS beside HTTP in dual mode (15691)
    ca: Path
    log: Path
    version: str
    shipped: Shipped
    cli_env: dict[str, str] = field(default_factory=dict)  # how rabbitmqctl reaches the node (its cookie in HOME)


def _server_script() -> str:
    """Debian's own start script, without the /usr/sbin wrapper that switches to the rabbitmq user
    and writes to /var/log/rabbitmq."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))
    if not found:
        pytest.skip("rabbitmq-server is installed by .ci/run")
    return found[-1]


def _epmd() -> str:
    for candidate in ["/usr/bin/epmd", *sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))]:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("epmd (erlang-base) is installed with rabbitmq-server by .ci/run")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the start script and the VM (RabbitMQ shuts down cleanly on it), SIGKILL after."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left
    if process.poll() is None:
        process.wait(timeout=STOP_TIMEOUT)


def _leftovers(base: Path) -> list[int]:
    """Processes of ours still naming the node's directory (the VM has it as -home)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(base).encode() in command:
            pids.append(int(entry.name))
    return pids


def _kill_leftovers(base: Path) -> None:
    deadline = time.monotonic() + 10
    while (pids := _leftovers(base)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _spawn(
    argv: list[str], out: IO[bytes], env: dict[str, str], cwd: Path, identity: _Identity | None
) -> subprocess.Popen[bytes]:
    """A process in a group of its own, as the node's user, logging into the node's log."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        user=identity.uid if identity else None,
        group=identity.gid if identity else None,
        extra_groups=[] if identity else None,
    )


def _write_configs(base: Path, conf_d: Path) -> None:
    """Beside the plan's files: the HTTP listeners on 127.0.0.1 (in a conf.d file of the test's
    own, a plain one's only where the shipped file has a plain listener at all), and the plugins
    the image enables."""
    shipped_conf = (conf_d / TLS_CONF).read_text()
    loopback = []
    for plugin in ("management", "prometheus"):
        loopback.append(f"{plugin}.ssl.ip = {LOCALHOST}")
        if f"{plugin}.tcp.port" in shipped_conf:
            loopback.append(f"{plugin}.tcp.ip = {LOCALHOST}")
    _write_owned(conf_d / "99-loopback.conf", "\n".join(loopback) + "\n")
    _write_owned(base / "enabled_plugins", "[rabbitmq_management,rabbitmq_prometheus].\n")


@contextlib.contextmanager
def _running_node(item: Shipped) -> Iterator[Node]:
    script, epmd = _server_script(), _epmd()
    identity = _server_identity()
    with scratch(item) as s:
        base = s.root
        tls_dir = s.host("/devstack/tls")
        conf_d = s.host("/etc/rabbitmq/conf.d")
        s.check_rules(item.text(f"/etc/rabbitmq/conf.d/{TLS_CONF}"))
        _write_configs(base, conf_d)
        ports = {"dist": free_port(), "epmd": free_port()}
        _write_owned(base / "rabbitmq-env.conf", "")  # instead of /etc/rabbitmq/rabbitmq-env.conf
        for name in ("mnesia", "log"):
            (base / name).mkdir()
            if identity is not None:
                os.chown(base / name, identity.uid, identity.gid)
        mode = item.tls
        node_name = f"devstack-tls-{os.getpid()}-{secrets.token_hex(3)}@localhost"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),  # the Erlang cookie
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "ERL_EPMD_ADDRESS": LOCALHOST,
            "ERL_EPMD_PORT": str(ports["epmd"]),
            "ERL_CRASH_DUMP": str(base / "erl_crash.dump"),
            "RABBITMQ_NODENAME": node_name,
            # The plain AMQP listener the image has by default (5672), here on 127.0.0.1: the
            # generated `listeners.tcp = none` must still close it, as the file wins over these.
            "RABBITMQ_NODE_IP_ADDRESS": LOCALHOST,
            "RABBITMQ_NODE_PORT": str(s.port(5672)),
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            # The plan's main file: the wrapper renders it from the Vault secret (the admin).
            "RABBITMQ_CONFIG_FILE": str(s.host(item.env["RABBITMQ_CONFIG_FILE"])),
            "RABBITMQ_CONFIG_FILES": str(conf_d),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),  # absent
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_LOGS": "-",  # to the process's output, our log file
        }
        log = base / "server.log"
        with log.open("ab") as out:
            # epmd of our own, in the foreground, so that we stop it; the VM finds it on its port.
            epmd_process = _spawn([epmd, "-address", LOCALHOST, "-port", str(ports["epmd"])], out, env, base, identity)
            try:
                _wait_until(
                    lambda: _accepts(ports["epmd"]),
                    epmd_process,
                    log,
                    "epmd",
                    timeout=START_TIMEOUT,
                    tail_lines=LOG_LINES,
                )
                node_process = _spawn([script], out, env, base, identity)
                try:
                    _wait_until(
                        lambda: "Server startup complete" in _text(log),
                        node_process,
                        log,
                        "rabbitmq",
                        timeout=START_TIMEOUT,
                        tail_lines=LOG_LINES,
                    )
                    version = re.search(r"Starting RabbitMQ (\S+) on Erlang (\S+)", _text(log))
                    assert version is not None, _tail(log)
                    yield Node(
                        mode=mode,
                        amqp=s.port(5672),
                        amqps=s.port(5671),
                        management=s.port(15672),
                        management_tls=s.port(15671) if mode is TlsMode.DUAL else None,
                        metrics=s.port(15692),
                        metrics_tls=s.port(15691) if mode is TlsMode.DUAL else None,
                        ca=tls_dir / CA_FILE,
                        log=log,
                        version=f"RabbitMQ {version[1]}, Erlang {version[2]}",
                        shipped=item,
                        cli_env={k: env[k] for k in ("HOME", "ERL_EPMD_ADDRESS", "ERL_EPMD_PORT", "RABBITMQ_NODENAME")},
                    )
                finally:
                    _stop_group(node_process)
            finally:
                epmd_process.terminate()
                try:
                    epmd_process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    epmd_process.kill()
                    epmd_process.wait(timeout=10)
                _kill_leftovers(base)
        assert not _leftovers(base), f"processes left running: {_leftovers(base)}"


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOCALHOST, port)) == 0


@pytest.fixture(scope="module", params=[1, 4], ids=["dual", "required"])
def node(request: pytest.FixtureRequest) -> Iterator[Node]:
    with _running_node(shipped("rabbitmq", f"phase={request.param}", "profiles=standard")) as running:
        yield running


# --- clients ----------------------------------------------------------------------------------


def _context(node: Node, *, maximum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(node.ca))
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


@contextlib.contextmanager
def _tls(port: int, context: ssl.SSLContext) -> Iterator[ssl.SSLSocket]:
    with (
        socket.create_connection((LOCALHOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        yield tls


def _connection_start(sock: socket.socket | ssl.SSLSocket) -> bytes:
    """Send the protocol header and return the first frame's method: Connection.Start is a
    method frame (1) on channel 0 with class 10, method 10, then version 0-9."""
    sock.sendall(AMQP_HEADER)
    data = b""
    while len(data) < 13:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data[:1] + data[1:3] + data[7:13]


CONNECTION_START = b"\x01" + b"\x00\x00" + b"\x00\x0a\x00\x0a" + b"\x00\x09"


def _suite(port: int, context: ssl.SSLContext) -> str:
    with _tls(port, context) as tls:
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def _http_get(sock: socket.socket | ssl.SSLSocket, path: str = "/", auth: str = "") -> tuple[str, bytes]:
    header = f"Authorization: Basic {base64.b64encode(auth.encode()).decode()}\r\n" if auth else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\n{header}Connection: close\r\n\r\n".encode())
    data = b""
    with contextlib.suppress(OSError):  # a TLS port may reset a plaintext client
        while chunk := sock.recv(65536):
            data += chunk
    status, _, rest = data.partition(b"\r\n")
    return status.decode(errors="replace"), rest


def _https_ports(node: Node) -> list[int]:
    if node.mode is TlsMode.DUAL:
        assert node.management_tls is not None
        assert node.metrics_tls is not None
        return [node.amqps, node.management_tls, node.metrics_tls]
    return [node.amqps, node.management, node.metrics]


# --- tests ------------------------------------------------------------------------------------


def test_amqps_verifies_for_localhost_and_speaks_amqp(node: Node) -> None:
    with _tls(node.amqps, _context(node)) as tls:
        assert tls.version() in ("TLSv1.3", "TLSv1.2")
        assert _connection_start(tls) == CONNECTION_START, node.version


def test_plaintext_amqp_only_while_clients_migrate(node: Node) -> None:
    if node.mode is TlsMode.DUAL:
        with socket.create_connection((LOCALHOST, node.amqp), timeout=10) as plain:
            assert _connection_start(plain) == CONNECTION_START
    else:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOCALHOST, node.amqp), timeout=10).close()


def _shipped_order(node: Node) -> list[str]:
    """The ECDSA TLS 1.2 suites in the order the shipped file lists them (ssl_options.ciphers.N)."""
    text = node.shipped.text(f"/etc/rabbitmq/conf.d/{TLS_CONF}")
    listed = sorted((int(n), suite) for n, suite in re.findall(r"^ssl_options\.ciphers\.(\d+) = (\S+)$", text, re.M))
    return [suite for _, suite in listed if suite in GCM_SUITES]


def test_tls12_takes_only_aead_suites_in_the_servers_order(node: Node) -> None:
    tls12 = ssl.TLSVersion.TLSv1_2
    for port in _https_ports(node):
        for suite in GCM_SUITES:
            assert _suite(port, _context(node, maximum=tls12, ciphers=suite)) == suite
        for suite in CBC_SUITES:
            with pytest.raises(ssl.SSLError):
                _suite(port, _context(node, maximum=tls12, ciphers=f"{suite}:@SECLEVEL=0"))
        # The client prefers AES-128; honor_cipher_order makes the server's first choice win.
        client_order = _context(node, maximum=tls12, ciphers=":".join(reversed(GCM_SUITES)))
        assert _suite(port, client_order) == _shipped_order(node)[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls11_is_refused(node: Node) -> None:
    for port in _https_ports(node):
        context = _context(node, maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED  # let the client offer TLS 1.1
        with pytest.raises(ssl.SSLError):
            _suite(port, context)


def test_management_listeners_follow_the_mode(node: Node) -> None:
    https = node.management_tls if node.mode is TlsMode.DUAL else node.management
    assert https is not None
    with _tls(https, _context(node)) as tls:
        status, body = _http_get(tls)
    assert status.startswith("HTTP/1.1 200"), status
    assert b"RabbitMQ Management" in body
    listeners = re.findall(r"Management plugin: (.*) listener started on port (\d+)", _text(node.log))
    if node.mode is TlsMode.DUAL:
        with socket.create_connection((LOCALHOST, node.management), timeout=10) as plain:
            status, body = _http_get(plain)
        assert status.startswith("HTTP/1.1 200"), status
        assert b"RabbitMQ Management" in body
        assert sorted(listeners) == sorted(
            [("HTTP (non-TLS)", str(node.management)), ("HTTPS", str(node.management_tls))]
        ), _tail(node.log)
    else:
        # No plain HTTP anywhere: the management port itself is HTTPS.
        assert listeners == [("HTTPS", str(node.management))], _tail(node.log)
        with socket.create_connection((LOCALHOST, node.management), timeout=10) as plain:
            plain.settimeout(10)
            status, _ = _http_get(plain)
        assert not status.startswith("HTTP/1.1 200"), status


def test_prometheus_listeners_follow_the_mode(node: Node) -> None:
    https = node.metrics_tls if node.mode is TlsMode.DUAL else node.metrics
    assert https is not None
    with _tls(https, _context(node)) as tls:
        status, body = _http_get(tls, "/metrics")
    assert status.startswith("HTTP/1.1 200"), status
    assert b"rabbitmq_" in body
    with socket.create_connection((LOCALHOST, node.metrics), timeout=10) as plain:
        plain.settimeout(10)
        status, body = _http_get(plain, "/metrics")
    if node.mode is TlsMode.DUAL:
        assert status.startswith("HTTP/1.1 200"), status
        assert b"rabbitmq_" in body
    else:
        # The metrics port itself is HTTPS: a plaintext scrape gets no metrics.
        assert not status.startswith("HTTP/1.1 200"), status
        assert b"rabbitmq_" not in body


def test_management_api_takes_the_admin_with_its_own_password_only(node: Node) -> None:
    https = node.management_tls if node.mode is TlsMode.DUAL else node.management
    assert https is not None
    admin = node.shipped.vault_secret
    others = vault_secrets(*node.shipped.overrides)
    attempts = {
        "its own password": f"{admin['user']}:{admin['password']}",
        "no password": f"{admin['user']}:",
        "a wrong password": f"{admin['user']}:wrong-password",
        "another client's password": f"{admin['user']}:{others['reference-api']['rabbitmq_password']}",
        "no credentials": "",
    }
    statuses = {}
    for what, auth in attempts.items():
        with _tls(https, _context(node)) as tls:
            statuses[what] = _http_get(tls, "/api/whoami", auth)[0]
    assert statuses.pop("its own password").startswith("HTTP/1.1 200"), _tail(node.log)
    assert all(status.startswith("HTTP/1.1 401") for status in statuses.values()), statuses
