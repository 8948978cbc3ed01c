"""scripts/vault-bootstrap.sh, run for real under busybox sh (and dash, bash) against FakeVault.

Each HTTP client path is forced with a PATH of symlinks: busybox applets only (busybox wget),
busybox applets + curl, GNU tools + GNU wget under dash, and the whole system (curl) under bash.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE
from tests.clockshim import jumping_clock, readings
from tests.fakevault import FakeVault
from tests.planpki import server_files
from tests.realservers import free_port
from tests.testpki import Pki, make_pki

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "vault-bootstrap.sh"
BUSYBOX = shutil.which("busybox") or ("/bin/busybox" if Path("/bin/busybox").exists() else None)
CURL = "/usr/bin/curl" if Path("/usr/bin/curl").exists() else shutil.which("curl")
DASH = shutil.which("dash")

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

# what the script may call, for the toolboxes made of the system's own tools
GNU_TOOLS = (
    "cat",
    "chmod",
    "cp",
    "date",
    "dirname",
    "mkdir",
    "mktemp",
    "mv",
    "rm",
    "sed",
    "sleep",
    "sync",
    "tail",
    "timeout",
    "tr",
)


@dataclass(frozen=True)
class Variant:
    id: str
    shell: tuple[str, ...]
    toolbox: str  # "busybox", "busybox+curl", "gnu+wget", "system"
    agent: str  # how the fake sees the client's User-Agent start


VARIANTS = (
    Variant("busybox-wget", ("busybox", "sh"), "busybox", "Wget"),
    Variant("busybox-curl", ("busybox", "sh"), "busybox+curl", "curl/"),
    Variant("dash-gnu-wget", ("dash",), "gnu+wget", "Wget/"),
    Variant("bash-system-curl", ("bash",), "system", "curl/"),
)


def _link(directory: Path, name: str, target: str) -> None:
    link = directory / name
    if not link.exists():
        link.symlink_to(target)


def make_toolbox(base: Path, kind: str) -> str:
    """A PATH for ``kind``; "system" is the real PATH."""
    if kind == "system":
        return os.environ.get("PATH", "/usr/bin:/bin")
    directory = base / kind
    if directory.exists():
        return str(directory)
    directory.mkdir(parents=True)
    if kind.startswith("busybox"):
        assert BUSYBOX is not None
        for applet in subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split():
            _link(directory, applet, BUSYBOX)
        if kind == "busybox+curl":
            if CURL is None:
                pytest.skip("curl is not installed")
            _link(directory, "curl", CURL)
    else:  # GNU tools and GNU wget, no curl
        wget = shutil.which("wget")
        if (
            wget is None
            or "GNU" not in subprocess.run([wget, "--version"], capture_output=True, text=True, check=False).stdout
        ):
            pytest.skip("GNU wget is not installed")
        for tool in GNU_TOOLS:
            found = shutil.which(tool)
            if found:
                _link(directory, tool, found)
        _link(directory, "wget", wget)
    return str(directory)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        yield server


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Bootstrap:
    """Runs the script in one variant, with the recovery file under a private HOME."""

    variant: Variant
    path: str
    home: Path
    tmpdir: Path
    pid: int | None = None  # the running script's shell, while run() runs (to signal it)

    @property
    def init_file(self) -> Path:
        return self.home / ".config" / "devstack" / "dev" / "vault-init.json"

    def run(self, address: str, *, wait: int = 5, script: Path = SCRIPT, tmp_left: bool = False, **extra: str) -> Run:
        """Runs the script; ``tmp_left``: its temporary folder may be left (and is removed)."""
        env = {
            "PATH": self.path,
            "HOME": str(self.home),
            "TMPDIR": str(self.tmpdir),
            "VAULT_ADDR": address,
            "DEVSTACK_VAULT_INIT_FILE": str(self.init_file),
            "DEVSTACK_WAIT_SECONDS": str(wait),
            **extra,
        }
        shell = list(self.variant.shell)
        program = BUSYBOX if shell[0] == "busybox" else shutil.which(shell[0])
        assert program is not None
        shell[0] = program
        started = time.monotonic()
        with subprocess.Popen(
            [*shell, str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home,
        ) as process:
            self.pid = process.pid
            try:
                stdout, stderr = process.communicate(timeout=60)
            finally:
                self.pid = None
                if process.poll() is None:
                    process.kill()
        run = Run(process.returncode, stdout, stderr, time.monotonic() - started)
        leftovers = [p.name for p in self.tmpdir.iterdir()]
        if tmp_left:
            assert all(name.startswith("devstack-vault.") for name in leftovers), leftovers
            for name in leftovers:
                shutil.rmtree(self.tmpdir / name)
            leftovers = []
        assert leftovers == [], f"temporary files left behind: {leftovers}"
        return run


def _shell_available(variant: Variant) -> None:
    if variant.shell[0] != "busybox" and shutil.which(variant.shell[0]) is None:
        pytest.skip(f"{variant.shell[0]} is not installed")


def make_bootstrap(tmp_path: Path, variant: Variant, path: str) -> Bootstrap:
    """The script under `variant` with PATH `path`, and a fresh HOME and TMPDIR in tmp_path."""
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    return Bootstrap(variant, path, tmp_path / "home", tmp_path / "tmp")


@pytest.fixture(params=VARIANTS, ids=[v.id for v in VARIANTS])
def bootstrap(request: pytest.FixtureRequest, toolboxes: Path, tmp_path: Path) -> Bootstrap:
    variant: Variant = request.param
    _shell_available(variant)
    return make_bootstrap(tmp_path, variant, make_toolbox(toolboxes, variant.toolbox))


@pytest.fixture
def busybox_wget(toolboxes: Path, tmp_path: Path) -> Bootstrap:
    return make_bootstrap(tmp_path, VARIANTS[0], make_toolbox(toolboxes, "busybox"))


def secrets_of(vault: FakeVault) -> list[str]:
    result = vault.init_result()
    return [result.root_token, *result.keys, *result.keys_base64]


def assert_quiet_about_secrets(run: Run, vault: FakeVault) -> None:
    for secret in secrets_of(vault):
        assert secret not in run.stderr
    for line in run.stderr.splitlines():
        assert line.startswith("vault-bootstrap: "), line


def unseal_requests(vault: FakeVault) -> int:
    return vault.count("sys/unseal", "PUT", "POST")


def init_requests(vault: FakeVault) -> int:
    return vault.count("sys/init", "PUT", "POST")


def write_init_file(bootstrap: Bootstrap, content: dict[str, object], indent: int | None = None) -> None:
    bootstrap.init_file.parent.mkdir(parents=True, mode=0o700)
    bootstrap.init_file.write_text(json.dumps(content, indent=indent))
    bootstrap.init_file.chmod(0o600)


NO_SUCH_PROXY = dict.fromkeys(
    ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"), "http://127.0.0.1:9"
)


# -- the contract, in every client variant --------------------------------------------------------


def test_first_run_initialises_unseals_and_prints_only_the_token(bootstrap: Bootstrap, vault: FakeVault) -> None:
    run = bootstrap.run(vault.address, **NO_SUCH_PROXY)  # Vault is local: keys never go through a proxy
    assert run.returncode == 0, run.stderr
    assert run.stdout == f'{{"root_token":"{vault.root_token}"}}\n'
    assert json.loads(run.stdout) == {"root_token": vault.root_token}
    assert vault.initialized
    assert not vault.sealed
    assert init_requests(vault) == 1
    assert unseal_requests(vault) == 3  # threshold 3 of 5 shares, one key at a time
    assert (vault.secret_shares, vault.secret_threshold) == (5, 3)
    # the file is Vault's whole init answer
    assert json.loads(bootstrap.init_file.read_text()) == vault.init_result().as_json()
    assert stat.S_IMODE(bootstrap.init_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(bootstrap.init_file.parent.stat().st_mode) == 0o700
    assert [p.name for p in bootstrap.init_file.parent.iterdir()] == ["vault-init.json"]
    assert_quiet_about_secrets(run, vault)
    assert all(r.user_agent.startswith(bootstrap.variant.agent) for r in vault.log), vault.log


def test_second_run_is_idempotent(bootstrap: Bootstrap, vault: FakeVault) -> None:
    first = bootstrap.run(vault.address)
    assert first.returncode == 0, first.stderr
    content = bootstrap.init_file.read_bytes()
    second = bootstrap.run(vault.address)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert init_requests(vault) == 1
    assert unseal_requests(vault) == 3
    assert bootstrap.init_file.read_bytes() == content
    assert_quiet_about_secrets(second, vault)


def test_a_restarted_vault_is_unsealed_again(bootstrap: Bootstrap, vault: FakeVault) -> None:
    assert bootstrap.run(vault.address).returncode == 0
    vault.seal()
    run = bootstrap.run(vault.address)
    assert run.returncode == 0, run.stderr
    assert not vault.sealed
    assert init_requests(vault) == 1
    assert unseal_requests(vault) == 6
    assert json.loads(run.stdout) == {"root_token": vault.root_token}
    assert_quiet_about_secrets(run, vault)


def test_initialised_without_the_file_exits_3(bootstrap: Bootstrap, vault: FakeVault) -> None:
    vault.initialize()
    run = bootstrap.run(vault.address)
    assert run.returncode == 3
    assert run.stdout == ""
    assert str(bootstrap.init_file) in run.stderr
    assert "restore" in run.stderr
    assert init_requests(vault) == 0
    assert unseal_requests(vault) == 0
    assert_quiet_about_secrets(run, vault)


# -- the other paths, with busybox wget (the client with the fewest features) ---------------------


def test_vault_never_up_exits_2_after_the_wait(busybox_wget: Bootstrap) -> None:
    port = free_port()
    run = busybox_wget.run(f"http://127.0.0.1:{port}", wait=1)
    assert run.returncode == 2
    assert run.stdout == ""
    assert f"127.0.0.1:{port} did not answer within 1s" in run.stderr
    assert 1 <= run.seconds < 15  # the wait, not a hang; room for a loaded machine
    assert not busybox_wget.init_file.exists()


@pytest.mark.parametrize("wait", [1, 2])
def test_the_wait_is_not_cut_short_by_a_second_boundary(toolboxes: Path, tmp_path: Path, wait: int) -> None:
    # Under dash, which looks `date` up on PATH (busybox sh runs its own applet).
    _shell_available(VARIANTS[2])
    gnu = make_bootstrap(tmp_path, VARIANTS[2], make_toolbox(toolboxes, VARIANTS[2].toolbox))
    clock = jumping_clock(tmp_path / "clock")
    port = free_port()
    run = gnu.run(f"http://127.0.0.1:{port}", wait=wait, PATH=f"{clock}:{gnu.path}")
    assert run.returncode == 2, run.stderr
    assert f"did not answer within {wait}s" in run.stderr
    # one reading before the first try and one after each: a try more than the seconds waited
    assert readings(clock) == wait + 2
    assert run.seconds >= wait


def test_waits_for_vault_to_come_up(busybox_wget: Bootstrap) -> None:
    port = free_port()
    late = FakeVault(port=port)
    timer = threading.Timer(1.0, late.start)
    timer.start()
    try:
        run = busybox_wget.run(f"http://127.0.0.1:{port}", wait=20)
    finally:
        timer.cancel()
        timer.join()
        late.stop()
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"root_token": late.root_token}
    assert run.seconds >= 1


def test_an_unsealed_vault_is_not_touched(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    result = vault.initialize()
    vault.unseal_all()
    write_init_file(busybox_wget, result.as_json())
    run = busybox_wget.run(vault.address)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"root_token": result.root_token}
    assert {path for _, path in vault.counts} == {"sys/seal-status", "sys/health"}
    assert all(method == "GET" for method, _ in vault.counts)


def test_keys_of_another_vault_exit_4(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    vault.initialize()
    other = FakeVault()
    write_init_file(busybox_wget, other.initialize().as_json())
    run = busybox_wget.run(vault.address)
    assert run.returncode == 4
    assert run.stdout == ""
    assert "do not unseal" in run.stderr or "refused unseal key" in run.stderr
    assert vault.sealed
    assert_quiet_about_secrets(run, vault)
    assert_quiet_about_secrets(run, other)


def test_an_interrupted_unseal_starts_over(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    result = vault.initialize()
    write_init_file(busybox_wget, result.as_json())
    body = json.dumps({"key": result.keys_base64[4]}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{vault.address}/v1/sys/unseal", body, method="PUT")).close()
    run = busybox_wget.run(vault.address)
    assert run.returncode == 0, run.stderr
    assert not vault.sealed
    assert unseal_requests(vault) == 1 + 1 + 3  # ours, the reset, three keys


def test_hex_keys_and_a_pretty_printed_file_are_used(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    result = vault.initialize(3, 2)
    # as if restored from a backup that a tool pretty-printed
    write_init_file(busybox_wget, {"keys": result.keys, "root_token": result.root_token}, indent=2)
    run = busybox_wget.run(vault.address)
    assert run.returncode == 0, run.stderr
    assert not vault.sealed
    assert unseal_requests(vault) == 2


def test_a_stale_file_is_kept_when_vault_is_new(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    write_init_file(busybox_wget, {"keys": ["aa"], "keys_base64": ["qg=="], "root_token": "hvs.old"})
    run = busybox_wget.run(vault.address, DEVSTACK_KEY_SHARES="1", DEVSTACK_KEY_THRESHOLD="1")
    assert run.returncode == 0, run.stderr
    assert (vault.secret_shares, vault.secret_threshold) == (1, 1)
    backups = [p for p in busybox_wget.init_file.parent.iterdir() if p.name.startswith("vault-init.json.replaced-")]
    assert len(backups) == 1
    assert json.loads(backups[0].read_text())["root_token"] == "hvs.old"
    assert json.loads(busybox_wget.init_file.read_text())["root_token"] == vault.root_token


def test_the_unseal_only_step_never_initialises(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    run = busybox_wget.run(vault.address, DEVSTACK_NO_INIT="1")
    assert run.returncode == 5
    assert "not initialised" in run.stderr
    assert init_requests(vault) == 0
    assert not busybox_wget.init_file.exists()
    assert busybox_wget.run(vault.address).returncode == 0
    vault.seal()
    run = busybox_wget.run(vault.address, DEVSTACK_NO_INIT="1")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"root_token": vault.root_token}
    assert (init_requests(vault), unseal_requests(vault)) == (1, 6)


def test_init_refused_by_vault_exits_1_with_its_reason(busybox_wget: Bootstrap, vault: FakeVault) -> None:
    run = busybox_wget.run(vault.address, DEVSTACK_KEY_SHARES="3", DEVSTACK_KEY_THRESHOLD="5")
    assert run.returncode == 1
    assert "initialising Vault failed (HTTP 400" in run.stderr
    assert not vault.initialized
    assert not busybox_wget.init_file.exists()
    assert list(busybox_wget.init_file.parent.iterdir()) == []  # no temporary answer left behind


# -- nothing secret on a command line -------------------------------------------------------------


def make_spy_toolbox(directory: Path, log: Path, *, with_curl: bool) -> str:
    """Every command is a dash script that logs its argv, then runs the real one."""
    assert BUSYBOX is not None
    directory.mkdir()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    targets = {applet: f"{BUSYBOX} {applet}" for applet in applets}
    if with_curl:
        assert CURL is not None
        targets["curl"] = CURL
    for name, target in targets.items():
        shim = directory / name
        shim.write_text(f'#!{DASH}\nprintf "%s\\n" "{name} $*" >>"{log}"\nexec {target} "$@"\n')
        shim.chmod(0o755)
    return str(directory)


@pytest.mark.parametrize("client", ["wget", "curl"])
def test_no_key_or_token_on_any_command_line(client: str, tmp_path: Path, vault: FakeVault) -> None:
    if DASH is None:
        pytest.skip("dash is not installed")
    if client == "curl" and CURL is None:
        pytest.skip("curl is not installed")
    log = tmp_path / "argv.log"
    path = make_spy_toolbox(tmp_path / "spy", log, with_curl=client == "curl")
    bootstrap = make_bootstrap(tmp_path, Variant("spy", ("dash",), "spy", ""), path)
    assert bootstrap.run(vault.address).returncode == 0
    vault.seal()
    assert bootstrap.run(vault.address).returncode == 0
    commands = log.read_text()
    assert f"{client} " in commands
    for secret in secrets_of(vault):
        assert secret not in commands
        assert base64.b64encode(secret.encode()).decode() not in commands


# -- Vault on HTTPS (TLS dual or required): the CA is the only trust -------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_vault(pki: Pki) -> Iterator[FakeVault]:
    with FakeVault(tls=(pki.chain, pki.key)) as server:
        yield server


VERIFYING = [v for v in VARIANTS if v.toolbox != "busybox"]  # curl and GNU wget take a CA file


@pytest.mark.parametrize("variant", VERIFYING, ids=[v.id for v in VERIFYING])
def test_https_with_the_ca_initialises_and_unseals(
    variant: Variant, toolboxes: Path, tmp_path: Path, https_vault: FakeVault, pki: Pki
) -> None:
    _shell_available(variant)
    bootstrap = make_bootstrap(tmp_path, variant, make_toolbox(toolboxes, variant.toolbox))
    address = https_vault.address
    assert address.startswith("https://")
    run = bootstrap.run(address, DEVSTACK_VAULT_CA=str(pki.ca))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["root_token"] == https_vault.init_result().root_token
    assert not https_vault.sealed
    # Another CA: the certificate does not verify, so nothing is sent and the wait runs out.
    https_vault.seal()
    refused = bootstrap.run(address, wait=2, DEVSTACK_VAULT_CA=str(pki.other_ca), DEVSTACK_NO_INIT="1")
    assert refused.returncode == 2, refused.stderr
    assert https_vault.sealed


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_https_refuses_a_certificate_without_the_name(
    host: str, bootstrap: Bootstrap, pki: Pki, tmp_path: Path
) -> None:
    if bootstrap.variant.toolbox == "busybox":
        pytest.skip("busybox wget is refused before any request (next test)")
    with FakeVault(tls=(pki.vault_only_chain, pki.vault_only_key)) as server:
        run = bootstrap.run(server.url_for(host), wait=2, DEVSTACK_VAULT_CA=str(pki.ca))
        assert run.returncode == 2, run.stderr
        assert server.count("sys/seal-status", "GET") == 0


def test_https_needs_a_ca_and_a_client_that_takes_one(bootstrap: Bootstrap, https_vault: FakeVault, pki: Pki) -> None:
    missing = bootstrap.run(https_vault.address)
    assert missing.returncode == 1
    assert "DEVSTACK_VAULT_CA" in missing.stderr
    absent = bootstrap.run(https_vault.address, DEVSTACK_VAULT_CA=str(pki.ca) + ".absent")
    assert absent.returncode == 1
    assert "missing or unreadable" in absent.stderr
    if bootstrap.variant.toolbox == "busybox":
        refused = bootstrap.run(https_vault.address, DEVSTACK_VAULT_CA=str(pki.ca))
        assert refused.returncode == 1
        assert "busybox wget cannot verify" in refused.stderr
    assert https_vault.count("sys/seal-status", "GET") == 0


def test_https_with_the_plans_own_vault_certificate(toolboxes: Path, tmp_path: Path) -> None:
    """What `pulumi up` does at phase 4: the bootstrap reaches https://127.0.0.1 and verifies the
    plan's Vault leaf against the CA file the ca-file step writes (the plan's root)."""
    files = server_files(["phase=4"], ["vault"])["vault"]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    variant = next(v for v in VARIANTS if v.toolbox == "busybox+curl")
    bootstrap = make_bootstrap(tmp_path, variant, make_toolbox(toolboxes, variant.toolbox))
    with FakeVault(tls=(tmp_path / CERT_FILE, tmp_path / KEY_FILE)) as server:
        run = bootstrap.run(server.url_for("127.0.0.1"), DEVSTACK_VAULT_CA=str(tmp_path / CA_FILE))
        assert run.returncode == 0, run.stderr
        assert not server.sealed
