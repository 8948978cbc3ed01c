"""scripts/entrypoint.sh, run for real against FakeVault, the way each kind of image runs it.

PATHs of symlinks force each HTTP client: busybox applets only (alpine: busybox nc), busybox
+ curl, busybox + perl, the system's tools with mawk and perl but no curl or wget under dash
(debian/ubuntu: perl), the system's tools with curl under bash (oracle linux), and busybox
applets without nc under dash (busybox wget, the last resort). Debian's busybox sh finds its
own applets whatever PATH says, so the wget-only image runs under dash.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.clockshim import jumping_clock, readings
from tests.fakevault import FakeVault
from tests.realservers import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "entrypoint.sh"
BUSYBOX = shutil.which("busybox") or ("/bin/busybox" if Path("/bin/busybox").exists() else None)
CURL = "/usr/bin/curl" if Path("/usr/bin/curl").exists() else shutil.which("curl")
PERL = shutil.which("perl")
DASH = shutil.which("dash")

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

# what the script and the test commands call, for the toolboxes made of the system's own tools
SYSTEM_TOOLS = (
    "cat", "chmod", "chown", "date", "env", "id", "ls", "mkdir", "mktemp", "mv", "rm", "sed", "sleep", "tail",
    "timeout", "tr", "true", "echo",
)  # fmt: skip

PASSWORD = 'p@ss "quoted" \\ back/slash\n\ttab é ☃ 😀 }{,'
SECRET = {
    "username": "app",
    "password": PASSWORD,
    "api_token": "tok_{{not-a-placeholder}}",
    "empty": "",
    "port": 5432,
}
PASSWORD_BYTES = PASSWORD.encode()


def json_escaped(value: str) -> str:
    """The wrapper's json syntax: quotes and backslashes escaped, control characters as \\uXXXX."""
    return "".join("\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c for c in value)


JSON_PASSWORD_BYTES = json_escaped(PASSWORD).encode()  # PASSWORD holds a newline: never raw in a file


@dataclass(frozen=True)
class Variant:
    id: str
    shell: str  # "busybox" (busybox sh), "dash" or "bash"
    tools: tuple[str, ...]  # "busybox" and/or extra programs; "system" for SYSTEM_TOOLS
    agent: str  # the User-Agent the fake sees: which transport ran
    without: tuple[str, ...] = ()  # busybox applets left out of PATH


VARIANTS = (
    Variant("alpine-busybox-nc", "busybox", ("busybox",), "devstack-entrypoint-nc", without=("wget",)),
    Variant("busybox-curl", "busybox", ("busybox", "curl"), "devstack-entrypoint-curl"),
    Variant("busybox-perl", "busybox", ("busybox", "perl"), "devstack-entrypoint-perl"),
    Variant("debian-dash-mawk-perl", "dash", ("system", "mawk", "perl"), "devstack-entrypoint-perl"),
    Variant("oracle-bash-gawk-curl", "bash", ("system", "gawk", "curl"), "devstack-entrypoint-curl"),
    Variant("dash-busybox-wget", "dash", ("busybox",), "devstack-entrypoint-wget", without=("nc",)),
)


def _link(directory: Path, name: str, target: str) -> None:
    link = directory / name
    if not link.exists():
        link.symlink_to(target)


def _program(name: str) -> str:
    found = {"busybox": BUSYBOX, "curl": CURL, "perl": PERL, "dash": DASH}.get(name) or shutil.which(name)
    if found is None:
        package = {"busybox": "busybox-static"}.get(name, name)
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return found


def make_toolbox(base: Path, variant: Variant) -> Path:
    directory = base / variant.id
    if directory.exists():
        return directory
    # Every program first: a skip must leave no half-built toolbox for the next test to reuse.
    needed = [t for t in variant.tools if t != "system"] + ([variant.shell] if variant.shell != "busybox" else [])
    for program in needed:
        _program(program)
    directory.mkdir(parents=True)
    for tool in variant.tools:
        if tool == "busybox":
            busybox = _program("busybox")
            for applet in subprocess.run(
                [busybox, "--list"], capture_output=True, text=True, check=True
            ).stdout.split():
                if applet not in variant.without:
                    _link(directory, applet, busybox)
        elif tool == "system":
            for name in SYSTEM_TOOLS:
                found = shutil.which(name)
                if found:
                    _link(directory, name, found)
        elif tool in ("mawk", "gawk"):
            _link(directory, "awk", _program(tool))
        else:
            _link(directory, tool, _program(tool))
    if variant.shell != "busybox":
        (directory / "sh").unlink(missing_ok=True)
        _link(directory, "sh", _program(variant.shell))  # what the test commands run
    return directory


def test_a_missing_program_skips_and_leaves_no_half_built_toolbox(tmp_path: Path) -> None:
    variant = Variant("half", "dash", ("system", "devstack-no-such-program"), "none")
    with pytest.raises(pytest.skip.Exception, match="devstack-no-such-program is not installed"):
        make_toolbox(tmp_path, variant)
    assert not (tmp_path / "half").exists()  # the next test asks again, and skips again


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        server.ready()
        server.put_secret("postgres", SECRET)
        yield server


@dataclass
class Run:
    returncode: int
    stdout: bytes
    stderr: str
    seconds: float


@dataclass
class Container:
    """A container's filesystem in a temporary directory, and the entrypoint run in it."""

    variant: Variant
    path: Path
    root: Path

    @property
    def secrets_dir(self) -> Path:
        return self.root / "run" / "devstack"

    @property
    def templates(self) -> Path:
        return self.root / "devstack" / "templates"

    @property
    def token_file(self) -> Path:
        return self.root / "devstack" / "token"

    def give_token(self, token: str) -> None:
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o400)

    def run(self, address: str, *command: str, wait: int = 5, **extra: str) -> Run:
        env = {
            "PATH": str(self.path),
            "VAULT_ADDR": address,
            "DEVSTACK_SECRET_PATH": "postgres",
            "DEVSTACK_TOKEN_FILE": str(self.token_file),
            "DEVSTACK_SECRETS_DIR": str(self.secrets_dir),
            "DEVSTACK_TEMPLATE_DIR": str(self.templates),
            "DEVSTACK_WAIT_SECONDS": str(wait),
            **extra,
        }
        return self.execute(env, *command)

    def execute(self, env: dict[str, str], *command: str) -> Run:
        """The entrypoint with exactly this environment."""
        started = time.monotonic()
        done = subprocess.run(
            [_program(self.variant.shell), *([] if self.variant.shell != "busybox" else ["sh"]), str(SCRIPT), *command],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
            cwd=self.root,
        )
        return Run(done.returncode, done.stdout, done.stderr.decode(), time.monotonic() - started)


BoxT = TypeVar("BoxT", bound=Container)


def make_container(kind: type[BoxT], toolboxes: Path, tmp_path: Path, variant: Variant, vault: FakeVault) -> BoxT:
    """A container of the variant's tools rooted in tmp_path/root, holding Vault's root token."""
    root = tmp_path / "root"
    root.mkdir()
    box = kind(variant, make_toolbox(toolboxes, variant), root)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    return box


@pytest.fixture(params=VARIANTS, ids=[v.id for v in VARIANTS])
def container(request: pytest.FixtureRequest, toolboxes: Path, tmp_path: Path, vault: FakeVault) -> Container:
    return make_container(Container, toolboxes, tmp_path, request.param, vault)


@pytest.fixture
def alpine(toolboxes: Path, tmp_path: Path, vault: FakeVault) -> Container:
    return make_container(Container, toolboxes, tmp_path, VARIANTS[0], vault)


def assert_one_clear_failure(run: Run, vault: FakeVault, *fragments: str) -> None:
    assert run.returncode != 0
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("devstack-entrypoint: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert_quiet(run, vault)
    assert run.stdout == b""  # the command never ran


def assert_quiet(run: Run, vault: FakeVault) -> None:
    assert vault.root_token is not None
    assert vault.root_token not in run.stderr
    for value in SECRET.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in run.stderr


def no_stage_left(box: Container) -> None:
    if box.secrets_dir.exists():
        assert not [p.name for p in box.secrets_dir.iterdir() if p.name.startswith(".")]


# -- the contract, in every kind of image ---------------------------------------------------------


def test_writes_each_key_renders_templates_and_execs(container: Container, vault: FakeVault) -> None:
    container.templates.mkdir(parents=True)
    (container.templates / "pgpass").write_text(
        "*:*:*:{{username}}:{{ password }}\n# {{ literal braces }} and {{x stay\n"
    )
    (container.templates / "app.env").write_text("PORT={{port}}")  # no newline at the end
    dest = container.root / "etc" / "app"
    show = 'env; echo "--umask"; umask; echo "--file"; cat "$DEVSTACK_SECRETS_DIR/password"'
    run = container.run(
        vault.address,
        "sh",
        "-c",
        show,
        DEVSTACK_TEMPLATES=f"pgpass:{dest}/pgpass:0400:json app.env:{dest}/app.env:0440",
        # Vault is on the Docker network: the token never goes through a proxy Docker passes in
        **dict.fromkeys(("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"), "http://127.0.0.1:9"),
    )
    assert run.returncode == 0, run.stderr
    environment, rest = run.stdout.split(b"--umask\n", 1)
    umask, password = rest.split(b"--file\n", 1)
    # the command ran, sees the files, and no secret is in its environment
    assert password == PASSWORD_BYTES
    ours = os.umask(0o022)
    os.umask(ours)
    assert int(umask.decode().strip(), 8) == ours  # the script's own umask 077 is not passed on
    assert vault.root_token is not None
    assert vault.root_token.encode() not in environment
    for value in ("p@ss", "tok_", "5432"):
        assert value.encode() not in environment
    # one file per key, exactly the value, mode 0400, in a 0700 directory
    assert stat.S_IMODE(container.secrets_dir.stat().st_mode) == 0o700
    assert sorted(p.name for p in container.secrets_dir.iterdir()) == sorted(SECRET)
    for key, value in SECRET.items():
        path = container.secrets_dir / key
        assert path.read_bytes() == str(value).encode(), key
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert json.loads(f'"{json_escaped(PASSWORD)}"') == PASSWORD
    assert (dest / "pgpass").read_bytes() == (
        b"*:*:*:app:" + JSON_PASSWORD_BYTES + b"\n# {{ literal braces }} and {{x stay\n"
    )
    assert stat.S_IMODE((dest / "pgpass").stat().st_mode) == 0o400
    assert (dest / "app.env").read_bytes() == b"PORT=5432"
    assert stat.S_IMODE((dest / "app.env").stat().st_mode) == 0o440
    assert sorted(p.name for p in dest.iterdir()) == ["app.env", "pgpass"]
    no_stage_left(container)
    assert_quiet(run, vault)
    assert all(r.user_agent.startswith(container.variant.agent) for r in vault.log), vault.log


def test_json_escapes_are_decoded(container: Container, vault: FakeVault) -> None:
    raw = (
        b'{"request_id":"x","data":{"data":{"a":"q\\"b\\\\s\\/n\\nt\\tr\\r","u":"\\u0041\\u00e9\\u2603\\ud83d\\ude00",'
        b'"z":"}{\\"data\\":1}"},\n  "metadata" : {"version" : 3, "destroyed": false, "custom_metadata": null}},\n'
        b' "warnings": ["w"], "wrap_info": null}\n'
    )
    vault.override("secret/data/postgres", 200, raw)
    run = container.run(vault.address, "true")
    assert run.returncode == 0, run.stderr
    assert (container.secrets_dir / "a").read_bytes() == b'q"b\\s/n\nt\tr\r'
    assert (container.secrets_dir / "u").read_bytes() == "Aé☃😀".encode()
    assert (container.secrets_dir / "z").read_bytes() == b'}{"data":1}'


def test_permission_denied(container: Container, vault: FakeVault) -> None:
    vault.set_policy("other", {"secret/data/other": ["read"], "secret/data/postgres": ["deny"]})
    container.give_token(vault.create_token(["other"]))
    run = container.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, "permission denied for secret/postgres")
    assert not container.secrets_dir.exists() or not list(container.secrets_dir.iterdir())


def test_no_secret_at_the_path(container: Container, vault: FakeVault) -> None:
    run = container.run(vault.address, "echo", "ran", DEVSTACK_SECRET_PATH="missing")
    assert_one_clear_failure(run, vault, "no secret at secret/missing")
    assert vault.count("secret/data/missing", "GET") == 1


# -- the other failures, in the alpine image -------------------------------------------------------


def test_unreachable_vault_fails_after_the_wait(alpine: Container, vault: FakeVault) -> None:
    port = free_port()
    run = alpine.run(f"http://127.0.0.1:{port}", "echo", "ran", wait=1)
    assert_one_clear_failure(run, vault, f"Vault at http://127.0.0.1:{port} is not ready after 1s")
    assert 1 <= run.seconds < 15  # the wait, not a hang; room for a loaded machine


def test_waits_until_vault_is_unsealed(alpine: Container, vault: FakeVault) -> None:
    vault.seal()
    timer = threading.Timer(0.5, vault.unseal_all)
    timer.start()
    try:
        run = alpine.run(vault.address, "cat", str(alpine.secrets_dir / "username"), wait=20)
    finally:
        timer.join()
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"app"
    assert vault.count("sys/health") >= 2


@pytest.mark.parametrize("wait", [1, 2])
def test_the_wait_is_not_cut_short_by_a_second_boundary(
    toolboxes: Path, tmp_path: Path, vault: FakeVault, wait: int
) -> None:
    # Under dash, which looks `date` up on PATH (busybox sh runs its own applet).
    box = make_container(Container, toolboxes, tmp_path, VARIANTS[3], vault)
    clock = jumping_clock(tmp_path / "clock")
    vault.seal()
    run = box.run(vault.address, "echo", "ran", wait=wait, PATH=f"{clock}:{box.path}")
    assert_one_clear_failure(run, vault, f"is not ready after {wait}s (HTTP 503: sealed)")
    assert readings(clock) >= 2, "the shim was not used"
    assert vault.count("sys/health") == wait + 1
    assert run.seconds >= wait


def test_a_sealed_vault_fails_with_its_state(alpine: Container, vault: FakeVault) -> None:
    vault.seal()
    run = alpine.run(vault.address, "echo", "ran", wait=0)
    assert_one_clear_failure(run, vault, "is not ready after 0s (HTTP 503: sealed)")


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_token_file_missing_or_empty(alpine: Container, vault: FakeVault, content: str | None) -> None:
    alpine.token_file.unlink()
    if content is not None:
        alpine.token_file.write_text(content)
    run = alpine.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, f"token file {alpine.token_file} is")
    assert vault.count("secret/data/postgres") == 0


def test_an_invalid_token(alpine: Container, vault: FakeVault) -> None:
    alpine.give_token("hvs.not-a-real-token")
    run = alpine.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, "permission denied for secret/postgres")


def test_any_other_status(alpine: Container, vault: FakeVault) -> None:
    vault.override("secret/data/postgres", 500, b'{"errors":["internal error"]}')
    run = alpine.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, "reading secret/postgres from", "failed: HTTP 500")


def test_a_template_naming_an_unknown_key_writes_nothing(alpine: Container, vault: FakeVault) -> None:
    alpine.templates.mkdir(parents=True)
    (alpine.templates / "conf").write_text("user={{username}} pass={{pasword}}\n")
    dest = alpine.root / "etc" / "conf"
    run = alpine.run(vault.address, "echo", "ran", DEVSTACK_TEMPLATES=f"conf:{dest}")
    assert_one_clear_failure(run, vault, "template conf uses {{pasword}}", "no key pasword")
    assert list(alpine.secrets_dir.iterdir()) == []
    assert list(dest.parent.iterdir()) == []


def test_a_missing_template_fails_before_waiting(alpine: Container, vault: FakeVault) -> None:
    run = alpine.run(vault.address, "echo", "ran", DEVSTACK_TEMPLATES="nope:/etc/nope")
    assert_one_clear_failure(run, vault, "template", "/nope is missing")
    assert vault.log == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"../escape": "x"}, "has a key that is not made of A-Z, a-z, 0-9 and _"),
        ({"nested": {"a": "b"}}, "the value of nested in secret/postgres is not a string"),
    ],
)
def test_unusable_secrets_are_refused(
    alpine: Container, vault: FakeVault, data: dict[str, object], reason: str
) -> None:
    vault.put_secret("postgres", data)
    run = alpine.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, reason)
    assert list(alpine.secrets_dir.iterdir()) == []
    assert not (alpine.root / "run" / "escape").exists()


def test_malformed_json_is_refused(alpine: Container, vault: FakeVault) -> None:
    vault.override("secret/data/postgres", 200, b'{"data":{"data":{"a":"b"')
    run = alpine.run(vault.address, "echo", "ran")
    assert_one_clear_failure(run, vault, "is not valid JSON")


def test_an_existing_directory_is_kept(alpine: Container, vault: FakeVault) -> None:
    alpine.secrets_dir.mkdir(parents=True)
    alpine.secrets_dir.chmod(0o1777)  # what a Docker tmpfs mount looks like
    (alpine.secrets_dir / "username").write_text("stale")
    (alpine.secrets_dir / "username").chmod(0o400)
    run = alpine.run(vault.address, "true")
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(alpine.secrets_dir.stat().st_mode) == 0o1777
    assert (alpine.secrets_dir / "username").read_text() == "app"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_files_are_given_to_the_owner(alpine: Container, vault: FakeVault) -> None:
    alpine.templates.mkdir(parents=True)
    (alpine.templates / "conf").write_text("{{username}}")
    dest = alpine.root / "etc" / "conf"
    secrets_dir = alpine.root / "run" / "new" / "devstack"
    run = alpine.run(
        vault.address,
        "true",
        DEVSTACK_SECRETS_OWNER="65534:65534",
        DEVSTACK_TEMPLATES=f"conf:{dest}",
        DEVSTACK_SECRETS_DIR=str(secrets_dir),
    )
    assert run.returncode == 0, run.stderr
    for path in (secrets_dir, secrets_dir / "password", dest):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534), path
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    # directories made on the way stay traversable for the service's user
    assert stat.S_IMODE(secrets_dir.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o755


def test_perl_refuses_https_at_once(toolboxes: Path, tmp_path: Path, vault: FakeVault) -> None:
    box = Container(VARIANTS[2], make_toolbox(toolboxes, VARIANTS[2]), tmp_path)
    run = box.run("https://127.0.0.1:1", "echo", "ran", wait=30)
    assert_one_clear_failure(run, vault, "can only reach http:// addresses")
    assert run.seconds < 15  # at once: well short of the 30 s wait


def test_a_command_is_required(alpine: Container, vault: FakeVault) -> None:
    run = alpine.run(vault.address)
    assert_one_clear_failure(run, vault, "no command to run")


# -- nothing secret on a command line --------------------------------------------------------------


# busybox applets a spy toolbox leaves out, so that this client is the one chosen
SPY_WITHOUT = {"nc": ("wget",), "wget": ("nc",)}


def make_spy_toolbox(directory: Path, log: Path, client: str) -> Path:
    """Every command is a dash script that logs its argv, then runs the real one."""
    assert BUSYBOX is not None
    directory.mkdir()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    left_out = SPY_WITHOUT.get(client, ())
    targets = {applet: f"{BUSYBOX} {applet}" for applet in applets if applet not in left_out}
    if client in ("curl", "perl"):
        targets[client] = _program(client)
    for name, target in targets.items():
        shim = directory / name
        shim.write_text(f'#!{DASH}\nprintf "%s\\n" "{name} $*" >>"{log}"\nexec {target} "$@"\n')
        shim.chmod(0o755)
    return directory


@pytest.mark.parametrize("client", ["curl", "perl", "nc", "wget"])
def test_what_reaches_a_command_line(client: str, tmp_path: Path, vault: FakeVault) -> None:
    """No secret value ever; the token neither, except for wget (its only way to send a header).

    With nc (busybox images), the request is written by the shell's builtin printf: the token
    is on no command line at all, and wget never runs.
    """
    if DASH is None:
        pytest.skip("dash is not installed")
    log = tmp_path / "argv.log"
    box = Container(Variant("spy", "dash", (), ""), make_spy_toolbox(tmp_path / "spy", log, client), tmp_path)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    box.templates.mkdir(parents=True)
    (box.templates / "conf").write_text("{{password}}")
    run = box.run(vault.address, "true", DEVSTACK_TEMPLATES=f"conf:{tmp_path}/etc/conf:0400:json")
    assert run.returncode == 0, run.stderr
    commands = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert any(line.startswith(f"{client} ") or f" {client} " in line for line in commands), commands
    for value in SECRET.values():
        if isinstance(value, str) and len(value) > 3:
            assert not any(value in line for line in commands)
    with_token = [line for line in commands if vault.root_token in line]
    assert all(r.user_agent == f"devstack-entrypoint-{client}" for r in vault.log), vault.log
    if client == "nc":
        assert not [line for line in commands if line.startswith("wget ") or " wget " in line]
    if client == "wget":
        assert with_token
        assert all(line.startswith(("wget ", "timeout 30 wget ")) for line in with_token), with_token
    else:
        assert with_token == []


# -- the fake itself: the Vault behaviour the scripts rely on ----------------------------------------


def call(vault: FakeVault, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{vault.address}/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"X-Vault-Token": token} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_fake_health_init_and_unseal_codes() -> None:
    with FakeVault() as vault:
        assert call(vault, "GET", "sys/health")[0] == 501
        assert call(vault, "GET", "sys/init") == (200, {"initialized": False})
        status, result = call(vault, "POST", "sys/init", {"secret_shares": 3, "secret_threshold": 2})
        assert status == 200
        assert set(result) == {"keys", "keys_base64", "root_token"}
        assert result["root_token"].startswith("hvs.")
        assert call(vault, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}) == (
            400,
            {"errors": ["Vault is already initialized"]},
        )
        assert call(vault, "GET", "sys/health")[0] == 503
        assert call(vault, "GET", "secret/data/x", token=result["root_token"]) == (503, {"errors": ["Vault is sealed"]})
        assert call(vault, "PUT", "sys/unseal", {"key": "not a key!"})[0] == 400
        # a share that is not a key is only found out at the threshold, which resets the progress
        assert call(vault, "PUT", "sys/unseal", {"key": result["keys_base64"][0]})[1]["progress"] == 1
        status, answer = call(vault, "PUT", "sys/unseal", {"key": "00" * 33})
        assert status == 400
        assert call(vault, "GET", "sys/seal-status")[1]["progress"] == 0
        assert call(vault, "PUT", "sys/unseal", {"key": result["keys"][2]})[1]["progress"] == 1
        assert call(vault, "PUT", "sys/unseal", {"reset": True})[1]["progress"] == 0
        call(vault, "PUT", "sys/unseal", {"key": result["keys"][2]})
        status, answer = call(vault, "PUT", "sys/unseal", {"key": result["keys_base64"][1]})
        assert (status, answer["sealed"], answer["t"], answer["n"]) == (200, False, 2, 3)
        assert call(vault, "GET", "sys/health")[0] == 200
        assert vault.count("sys/unseal") == 7


def test_fake_policies_follow_vault_matching() -> None:
    with FakeVault() as vault:
        vault.ready()
        for path in ("app/one", "app/two/deep", "team/a/db", "other"):
            vault.put_secret(path, {"k": "v"})
        vault.set_policy(
            "p",
            {
                "secret/data/app/*": ["read"],
                "secret/data/app/two/*": ["deny"],  # the more specific glob wins
                "secret/data/+/a/db": ["read"],
                "secret/data/other": ["create"],  # exact beats every glob; no read
            },
        )
        token = vault.create_token(["p"])
        assert call(vault, "GET", "secret/data/app/one", token=token)[0] == 200
        assert call(vault, "GET", "secret/data/app/two/deep", token=token) == (
            403,
            {"errors": ["1 error occurred:\n\t* permission denied\n\n"]},
        )
        assert call(vault, "GET", "secret/data/team/a/db", token=token)[0] == 200
        assert call(vault, "GET", "secret/data/team/b/db", token=token)[0] == 403
        assert call(vault, "GET", "secret/data/other", token=token)[0] == 403
        # writing an existing path needs update, a new one create
        assert call(vault, "PUT", "secret/data/other", {"data": {"k": "w"}}, token=token)[0] == 403
        vault.set_policy("q", {"secret/data/*": ["create"]})
        writer = vault.create_token(["q"])
        status, answer = call(vault, "POST", "secret/data/fresh", {"data": {"k": "w"}}, token=writer)
        assert (status, answer["data"]["version"]) == (200, 1)
        assert call(vault, "GET", "secret/data/none", token=vault.root_token) == (404, {"errors": []})
        assert call(vault, "GET", "secret/data/app/one")[0] == 403
        assert call(vault, "GET", "secret/data/app/one", token="hvs.nope") == (403, {"errors": ["permission denied"]})
        bearer = urllib.request.Request(
            f"{vault.address}/v1/secret/data/app/one", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(bearer, timeout=5) as answer:
            assert json.loads(answer.read())["data"]["data"] == {"k": "v"}
