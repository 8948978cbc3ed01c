"""scripts/entrypoint.sh's HTTPS clients and the Vault token: on no command line, ever (the
busybox nc + ssl_client path, and curl and openssl s_client).

In Alpine images the only verifying HTTPS client is busybox wget handing TLS to Alpine's
ssl_client, and wget takes the Vault token only as an argument, which any local user can list.
The wrapper now prefers busybox nc (with -e) to connect and hand the socket to ssl_client
itself, writing the request (token included) with builtins into ssl_client's stdin; at strict
(DEVSTACK_NO_TOKEN_ARGV=1) it never falls back to wget.

Real: Debian's busybox nc (its -e), dash, the wrapper, and FakeVault serving HTTPS with the
plan's own Vault leaf and CA (no Vault binary here: FakeVault is the Vault). Stand-in: Alpine's
ssl_client, which Debian lacks (Debian's busybox has an ssl_client applet that checks nothing):
a small Python program doing what Alpine's does on the same command line (TLS on the socket
fd given with -s, the chain checked against the system bundle, the name against -n). While
every request is in flight, each process's command line is read from /proc: the token, the
role ID and the secret ID must be in none of them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE
from tests.fakevault import FakeVault
from tests.planpki import server_files
from tests.test_entrypoint_approle_sh import POLICY, AppRoleBox
from tests.test_entrypoint_https_sh import VERIFYING
from tests.test_entrypoint_sh import BUSYBOX, DASH, SECRET, Variant, make_toolbox
from tests.testpki import make_pki

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None or DASH is None, reason="busybox and dash are needed (busybox-static, dash)"),
]

# Alpine's ssl_client, as far as the wrapper uses it: -s FD (the connected socket), -n NAME (SNI
# and the name checked), the system bundle as the only trust; "-h" prints its usage line.
STAND_IN = """#!{python}
import os, select, socket, ssl, sys, time
args = sys.argv[1:]
if not args or args[0] == "-h":
    print("usage: ssl_client [-s FD] [-I] -n SNI")
    sys.exit(0)
fd, name = None, None
while args:
    flag = args.pop(0)
    if flag.startswith("-s"):
        fd = int(flag[2:] or args.pop(0))
    elif flag == "-n":
        name = args.pop(0)
context = ssl.create_default_context(cafile=os.environ.get("DEVSTACK_SYSTEM_CA", "/etc/ssl/cert.pem"))
try:
    tls = context.wrap_socket(socket.socket(fileno=fd), server_hostname=name)
except ssl.SSLError as error:
    print(f"ssl_client: {{error.reason}}", file=sys.stderr)
    sys.exit(1)
time.sleep(float(os.environ.get("STAND_IN_PAUSE", "0")))  # the request is in flight
# relay both ways until the server is done, as Alpine's does (busybox wget keeps its side open)
stdin_open = True
while True:
    readable, _, _ = select.select([tls] + ([sys.stdin] if stdin_open else []), [], [], 30)
    if not readable:
        sys.exit(1)
    if sys.stdin in readable:
        data = os.read(0, 65536)
        if data:
            tls.sendall(data)
        else:
            stdin_open = False
    if tls in readable:
        try:
            chunk = tls.recv(65536)
        except ssl.SSLWantReadError:
            continue
        if not chunk:
            break
        os.write(1, chunk)
        while tls.pending():
            os.write(1, tls.recv(65536))
"""


@pytest.fixture(scope="module")
def plan_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plan's Vault leaf (with the intermediate), key and CA at strict (phase 4)."""
    directory = tmp_path_factory.mktemp("plan-vault")
    for name, content in server_files(["phase=4"], ["vault"])["vault"].items():
        (directory / name).write_text(content)
    return directory


@pytest.fixture
def vault(plan_vault: Path) -> Iterator[FakeVault]:
    with FakeVault(tls=(plan_vault / CERT_FILE, plan_vault / KEY_FILE)) as server:
        server.ready()
        server.put_secret("postgres", SECRET)
        server.enable_approle()
        server.load_policy_hcl("postgres", POLICY)
        yield server


def _box(toolboxes: Path, tmp_path: Path, variant: Variant) -> AppRoleBox:
    directory = make_toolbox(toolboxes, variant)
    stand_in = directory / "ssl_client"
    if not stand_in.exists() or stand_in.is_symlink():
        stand_in.unlink(missing_ok=True)
        stand_in.write_text(STAND_IN.format(python=sys.executable))
        stand_in.chmod(0o755)
    return AppRoleBox(variant, directory, tmp_path)


# dash with busybox's applets (nc with -e, wget) and the stand-in ssl_client
NCSSL = Variant("ncssl-dash-busybox", "dash", ("busybox",), "devstack-entrypoint-ncssl", without=("ssl_client",))
# the same without nc: busybox wget is all that is left
WGET_ONLY = Variant("ncssl-dash-busybox-no-nc", "dash", ("busybox",), "", without=("ssl_client", "nc"))


class CommandLines:
    """Every process's command line, read from /proc over and over while a run lasts."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        self.seen.add((proc / "cmdline").read_bytes())
                    except OSError:
                        continue
            time.sleep(0.01)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def holding(self, value: str) -> list[str]:
        return [line.replace(b"\0", b" ").decode(errors="replace") for line in self.seen if value.encode() in line]


def _run(box: AppRoleBox, vault: FakeVault, plan_vault: Path, **extra: str) -> tuple[object, CommandLines]:
    system = box.root / "cert.pem"
    shutil.copy(plan_vault / CA_FILE, system)  # the platform puts the CA over the system bundle
    with CommandLines() as lines:
        run = box.login_run(
            vault.url_for("localhost"),
            "cat",
            str(box.secrets_dir / "username"),
            wait=10,
            DEVSTACK_VAULT_CA=str(plan_vault / CA_FILE),
            DEVSTACK_SYSTEM_CA=str(system),
            STAND_IN_PAUSE="0.3",
            **extra,
        )
    return run, lines


def test_nc_and_ssl_client_read_the_secret_with_no_token_on_a_command_line(
    toolboxes: Path, tmp_path: Path, vault: FakeVault, plan_vault: Path
) -> None:
    box = _box(toolboxes, tmp_path, NCSSL)
    role_id, secret_id = vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres")
    box.give_ids(role_id, secret_id)
    run, lines = _run(box, vault, plan_vault, DEVSTACK_NO_TOKEN_ARGV="1")
    assert run.returncode == 0, run.stderr  # type: ignore[attr-defined]
    assert run.stdout == b"app"  # type: ignore[attr-defined]
    # The watch saw the transport while it ran: nc's own line and ssl_client's.
    assert lines.holding("ssl_client\0-s3\0-n\0localhost")
    assert lines.holding(f"nc\0-w\0005\0localhost\0{vault.port}")
    assert vault.tokens
    for value in (*vault.tokens, role_id, secret_id):
        assert lines.holding(value) == [], value
    assert all(r.user_agent == NCSSL.agent for r in vault.log), vault.log


def test_ssl_client_checks_the_name_it_is_given(toolboxes: Path, tmp_path: Path) -> None:
    """A leaf that names "vault" only is refused for localhost: nothing of HTTP gets through."""
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    with FakeVault(tls=(pki.vault_only_chain, pki.vault_only_key)) as server:
        server.ready()
        box = _box(toolboxes, tmp_path, NCSSL)
        box.give_ids("role", "secret")
        system = box.root / "cert.pem"
        shutil.copy(pki.ca, system)
        run = box.login_run(
            server.url_for("localhost"), "true", wait=0, DEVSTACK_VAULT_CA=str(pki.ca), DEVSTACK_SYSTEM_CA=str(system)
        )
        assert run.returncode == 1
        assert "is not ready after 0s" in run.stderr
        assert server.log == []
        assert server.tls_connections >= 1


def test_wget_would_show_the_token_and_is_refused_at_strict(
    toolboxes: Path, tmp_path: Path, vault: FakeVault, plan_vault: Path
) -> None:
    """Without nc, busybox wget is what is left, which takes the token only on its command
    line: at strict the wrapper refuses it before any request."""
    box = _box(toolboxes, tmp_path, WGET_ONLY)
    role_id, secret_id = vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres")
    box.give_ids(role_id, secret_id)
    strict, _ = _run(box, vault, plan_vault, DEVSTACK_NO_TOKEN_ARGV="1")
    assert strict.returncode == 1  # type: ignore[attr-defined]
    assert "DEVSTACK_NO_TOKEN_ARGV=1" in strict.stderr  # type: ignore[attr-defined]
    assert vault.log == []
    assert vault.tls_connections == 0


def test_the_watch_sees_a_command_line_while_it_runs() -> None:
    """What makes the first test able to fail: a value on a short-lived command line is seen."""
    with CommandLines() as lines:
        subprocess.run(["sh", "-c", "sleep 0.3", "hvs.planted-token"], check=True, timeout=10)
    assert lines.holding("hvs.planted-token")


@pytest.mark.parametrize("variant", VERIFYING, ids=[v.id for v in VERIFYING])
def test_curl_and_openssl_show_no_token_while_a_request_is_in_flight(
    variant: Variant, toolboxes: Path, tmp_path: Path, vault: FakeVault, plan_vault: Path
) -> None:
    """Debian's curl and openssl s_client, with the plan's leaf and CA: each request is held
    0.3 s by the fake, and the watch reads every command line meanwhile."""
    if variant.tools[-1] == "openssl" and shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    box = AppRoleBox(variant, make_toolbox(toolboxes, variant), tmp_path)
    role_id, secret_id = vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres")
    box.give_ids(role_id, secret_id)
    vault.before_request = lambda *_: time.sleep(0.3)
    run, lines = _run(box, vault, plan_vault)
    assert run.returncode == 0, run.stderr  # type: ignore[attr-defined]
    assert lines.holding(variant.tools[-1])  # the client's own command line was seen
    assert vault.tokens
    for value in (*vault.tokens, role_id, secret_id):
        assert lines.holding(value) == [], value
