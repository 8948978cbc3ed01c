"""Hostile secret values rendered into every template the plan ships, by the real entrypoint wrapper
(scripts/entrypoint.sh, busybox as in Alpine images) reading them from the Vault stand-in; each
rendered file is read back by the real parser of its format, which must find exactly the value
(and nothing added), or the wrapper refuses the value with one clear line and writes nothing.

The templates come from the plan (each container's DEVSTACK_TEMPLATES and the files uploaded to
the template folder), so a new template is covered without an edit here; a new syntax needs a
reader below, or the test fails. The parsers: Python's json for JSON; redis-server itself
(CONFIG GET after including the file); PgBouncer itself (a login with the password its auth_file
gives); RabbitMQ's own cuttlefish parser (cuttlefish_conf:file, in the Erlang VM).
FakeVault stands in for Vault: the real server is not installable here (see the README).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.model import TEMPLATE_DIR, ValueSyntax
from devstack.services.pgbouncer import AUTH_USER, users_file
from tests.conftest import PlanFactory, containers
from tests.fakevault import FakeVault
from tests.realservers import LOCALHOST, RespConnection, free_port
from tests.test_entrypoint_sh import VARIANTS, Container, make_toolbox

pytestmark = pytest.mark.real

HOSTILE = (
    "line\nadmin = injected",  # a new line (ini/conf, Redis, RabbitMQ)
    "cr\rcarriage",
    'quote" "extra',  # ends a quoted string early
    'json","injected":"x',
    "back\\slash\\",
    "hash # comment",
    "{{password}} braces }}",
    "tab\tinside",
    " spaces at both ends ",
    "latin é and snow ☃",
    "dollar $HOME `id` ;&|",
)
BENIGN = "Abc123benign"


@dataclass(frozen=True)
class PlannedTemplate:
    container: str
    name: str
    syntax: ValueSyntax
    content: str

    def keys(self) -> list[str]:
        return sorted(set(re.findall(r"\{\{ *([A-Za-z0-9_]+) *\}\}", self.content)))


def planned_templates(shared_plan: PlanFactory) -> list[PlannedTemplate]:
    found: dict[tuple[str, str], PlannedTemplate] = {}
    for phase in (0, 4):
        for name, inputs in containers(shared_plan("profiles=full,reference", f"phase={phase}")).items():
            env = dict(entry.split("=", 1) for entry in inputs.get("envs", []))
            files = {u["file"]: u["content"] for u in inputs.get("uploads", [])}
            for entry in env.get("DEVSTACK_TEMPLATES", "").split():
                template, _dest, _mode, syntax = entry.split(":")
                content = files[f"{TEMPLATE_DIR}/{template}"]
                found[(name, template)] = PlannedTemplate(name, template, ValueSyntax(syntax), content)
    return sorted(found.values(), key=lambda t: (t.container, t.name))


# --- the wrapper ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    text: str | None  # None: refused
    error: str


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[PlannedTemplate, dict[str, str]], Rendered]]:
    toolbox = make_toolbox(tmp_path_factory.mktemp("tools"), VARIANTS[0])
    with FakeVault() as vault:
        vault.ready()
        assert vault.root_token is not None
        counter = iter(range(10**6))

        def run(template: PlannedTemplate, values: dict[str, str]) -> Rendered:
            root = tmp_path_factory.mktemp(f"box{next(counter)}")
            box = Container(VARIANTS[0], toolbox, root)
            assert vault.root_token is not None
            box.give_token(vault.root_token)
            box.templates.mkdir(parents=True)
            (box.templates / template.name).write_text(template.content)
            vault.put_secret("postgres", values)
            dest = root / "out" / template.name
            result = box.run(vault.address, "true", DEVSTACK_TEMPLATES=f"{template.name}:{dest}:0400:{template.syntax}")
            if result.returncode != 0:
                assert not dest.exists()
                return Rendered(None, result.stderr)
            return Rendered(dest.read_bytes().decode(), result.stderr)  # no newline translation

        yield run


# --- the readers: the format's own parser --------------------------------------------------------

Reader = Callable[[str, str, Path], object]  # rendered text, the marker's setting, a scratch folder


def read_json(text: str, _where: str, _scratch: Path) -> object:
    return json.loads(text)


def _redis_config(text: str, directive: str, scratch: Path) -> object:
    """What redis-server itself makes of the file: CONFIG GET of the templated directive."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server missing: apt-get install redis-server")
    included = scratch / "rendered.conf"
    included.write_bytes(text.encode())
    port = free_port()
    main = scratch / "main.conf"
    main.write_text(f'port {port}\nbind {LOCALHOST}\nsave ""\nappendonly no\ndir {scratch}\ninclude {included}\n')
    process = subprocess.Popen([server, str(main)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if process.poll() is not None:
                return {"refused by redis-server": process.stdout.read().decode() if process.stdout else ""}
            try:
                with RespConnection(port) as connection:
                    answer = connection.call("CONFIG", "GET", directive)
            except OSError:
                time.sleep(0.05)
                continue
            assert isinstance(answer, list), answer
            name, setting = answer
            assert isinstance(name, bytes), answer
            assert isinstance(setting, bytes), answer
            return {name.decode(): setting.decode()}
        raise AssertionError("redis-server did not answer")
    finally:
        process.terminate()
        process.wait(timeout=10)


def read_cuttlefish(text: str, _where: str, scratch: Path) -> object:
    """RabbitMQ's own parser of its .conf files, run in the Erlang VM."""
    ebin = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/cuttlefish-*/ebin"))
    erl = shutil.which("erl")
    if not ebin or erl is None:
        pytest.skip("RabbitMQ's cuttlefish missing: apt-get install rabbitmq-server")
    conf = scratch / "rabbitmq.conf"
    conf.write_bytes(text.encode())
    program = (
        f'case cuttlefish_conf:file("{conf}") of '
        '{errorlist, E} -> io:format("~w", [E]); '
        'L -> io:format("~s", [jsx_free(L)]) end, halt().'
    )
    # Printed as JSON by hand: each setting's dotted key and its value's bytes.
    program = program.replace(
        "jsx_free(L)",
        '["{" ++ string:join([io_lib:format("~p:~w", [string:join(K, "."), V]) || {K, V} <- L], ",") ++ "}"]',
    )
    command = [erl, "-noshell", "-pa", ebin[-1], "-eval", program]
    answer = subprocess.run(command, capture_output=True, timeout=60, check=False)
    out = answer.stdout.decode()
    if not out.startswith("{"):
        return {"refused by cuttlefish": out}
    pairs = re.findall(r'"([^"]+)":(\[[0-9,]*\])', out)
    return {key: bytes(json.loads(codes)).decode("latin-1") for key, codes in pairs}


def _pgbouncer_login(text: str, user: str, password: str, scratch: Path) -> bool:
    binary, psql = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", shutil.which("psql") or "psql"
    port = free_port()
    userlist = scratch / "userlist.txt"
    userlist.write_bytes(text.encode())
    ini = scratch / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n[pgbouncer]\n"
        f"listen_addr = {LOCALHOST}\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = plain\nauth_file = {userlist}\nadmin_users = {user}\n"
        f"logfile = {scratch}/pgbouncer.log\npidfile = {scratch}/pgbouncer.pid\n"
    )
    as_nobody = os.geteuid() == 0
    if as_nobody:
        for path in (scratch, userlist, ini):
            os.chown(path, 65534, 65534)
    process = subprocess.Popen(
        [binary, str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=65534 if as_nobody else None,
        group=65534 if as_nobody else None,
        extra_groups=[] if as_nobody else None,
    )
    try:
        env = {"PATH": os.environ["PATH"], "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "3", "PGSSLMODE": "disable"}
        answer = None
        for _ in range(60):
            answer = subprocess.run(
                [
                    psql,
                    "-X",
                    "-qAt",
                    "-h",
                    LOCALHOST,
                    "-p",
                    str(port),
                    "-U",
                    user,
                    "-d",
                    "pgbouncer",
                    "-c",
                    "SHOW VERSION",
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=10,
                check=False,
            )
            if answer.returncode == 0:
                return True
            if "password authentication failed" in answer.stderr or "authentication failed" in answer.stderr:
                return False
            time.sleep(0.1)
        raise AssertionError(f"pgbouncer did not answer: {answer.stderr if answer else ''}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def check_pgbouncer_userlist(template: PlannedTemplate, key: str, value: str, text: str, scratch: Path) -> None:
    """PgBouncer itself reads its auth_file: a login with the value works, with anything else not."""
    if shutil.which("psql") is None or not (shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists()):
        pytest.skip("pgbouncer or psql missing: apt-get install pgbouncer postgresql-client")
    user = re.match(r'^"((?:[^"]|"")*)"', text)
    assert user is not None, text
    name = user[1].replace('""', '"')
    (scratch / "ok").mkdir()
    (scratch / "wrong").mkdir()
    assert _pgbouncer_login(text, name, value, scratch / "ok"), (template.name, key, value)
    assert not _pgbouncer_login(text, name, value + "x", scratch / "wrong"), "a login that cannot fail"


def _reading(reader: Reader) -> Check:
    """A check from a parser: the value is where the marker lands, and no setting is added."""

    def check(template: PlannedTemplate, key: str, value: str, text: str, scratch: Path) -> None:
        where = _directive(template, key) if template.syntax is ValueSyntax.REDIS else ""
        document = reader(text, where, scratch)
        marked = reader(_marker_render(template, key), where, scratch)
        path = _find(marked, MARKER)
        assert _at(document, path) == value, (template.name, key, value, document)
        assert isinstance(document, dict), document
        assert isinstance(marked, dict), marked
        assert set(document) == set(marked), ("a setting was added", document)

    return check


Check = Callable[[PlannedTemplate, str, str, str, Path], None]
MARKER = "MARKER0000"
CHECKS: dict[ValueSyntax, Check] = {
    ValueSyntax.JSON: _reading(read_json),
    ValueSyntax.REDIS: _reading(_redis_config),
    ValueSyntax.CUTTLEFISH: _reading(read_cuttlefish),
    ValueSyntax.DOUBLED: check_pgbouncer_userlist,
}


def _find(document: object, marker: str) -> list[object]:
    """The path to the marker's value in a parsed document."""
    if document == marker:
        return []
    if isinstance(document, dict):
        for key, value in document.items():
            try:
                return [key, *_find(value, marker)]
            except KeyError:
                continue
    raise KeyError(marker)


def _at(document: object, path: list[object]) -> object:
    for step in path:
        assert isinstance(document, dict), document
        document = document[step]
    return document


def _directive(template: PlannedTemplate, key: str) -> str:
    line = next(line for line in template.content.splitlines() if "{{" in line and key in line)
    return line.split()[0]


# --- the test -------------------------------------------------------------------------------------


def test_every_planned_template_is_found(shared_plan: PlanFactory) -> None:
    templates = planned_templates(shared_plan)
    assert {(t.container, t.name) for t in templates} >= {
        ("dev-rabbitmq", "rabbitmq.conf"),
        ("dev-redis-1", "masterauth.conf"),
        ("dev-redis-exporter-1", "redis-passwords.json"),
    }
    assert all(t.syntax in CHECKS for t in templates), "a syntax with no reader here"


def test_hostile_values_never_change_a_rendered_file(
    shared_plan: PlanFactory, render: Callable[[PlannedTemplate, dict[str, str]], Rendered]
) -> None:
    """For each distinct template (containers of one kind share one), each key it uses, each hostile
    value: the format's parser reads exactly the value, or the wrapper refuses it."""
    seen: set[tuple[str, str]] = set()
    figures = {"rendered": 0, "refused": 0}
    for template in planned_templates(shared_plan):
        if (template.name, template.content) in {(n, c) for n, c in seen}:
            continue
        seen.add((template.name, template.content))
        check = CHECKS[template.syntax]
        keys = template.keys()
        for key in keys:
            benign = dict.fromkeys(keys, BENIGN)
            for value in HOSTILE:
                with tempfile.TemporaryDirectory(prefix="dsinj") as folder:
                    scratch = Path(folder)
                    os.chmod(scratch, 0o755)
                    outcome = render(template, {**benign, key: value})
                    if outcome.text is None:
                        figures["refused"] += 1
                        assert outcome.error.count("\n") == 1, outcome.error
                        assert f"the value of {key} " in outcome.error, outcome.error
                        assert template.syntax in outcome.error, outcome.error
                        assert value.strip() not in outcome.error  # never the value itself
                        continue
                    figures["rendered"] += 1
                    check(template, key, value, outcome.text, scratch)
    print(f"hostile renders: {figures}")
    assert figures["rendered"] > 0
    assert figures["refused"] > 0


def _marker_render(template: PlannedTemplate, key: str) -> str:
    """The file as the wrapper writes it for a plain value: each placeholder of key as the marker,
    the others as the benign value (a plain value reads the same in every syntax)."""
    rendered = re.sub(r"\{\{ *" + key + r" *\}\}", MARKER, template.content)
    return re.sub(r"\{\{ *[A-Za-z0-9_]+ *\}\}", BENIGN, rendered)


def test_pgbouncer_users_file_keeps_hostile_passwords() -> None:
    """PgBouncer's auth_file is its users file, rendered in Python (devstack.services.pgbouncer),
    not by the wrapper: PgBouncer itself reads each hostile value back as exactly that password,
    and the renderer refuses a value with a control character, which would end the line."""
    if shutil.which("psql") is None or not (shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists()):
        pytest.skip("pgbouncer or psql missing: apt-get install pgbouncer postgresql-client")
    figures = {"read back": 0, "refused": 0}
    for value in HOSTILE:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            with pytest.raises(ValueError, match="control character"):
                users_file(value, [])
            figures["refused"] += 1
            continue
        text = users_file(value, [])
        with tempfile.TemporaryDirectory(prefix="dsinj") as folder:
            scratch = Path(folder)
            os.chmod(scratch, 0o755)
            (scratch / "ok").mkdir()
            (scratch / "wrong").mkdir()
            assert _pgbouncer_login(text, AUTH_USER, value, scratch / "ok"), value
            assert not _pgbouncer_login(text, AUTH_USER, value + "x", scratch / "wrong"), "a login that cannot fail"
        figures["read back"] += 1
    print(f"pgbouncer users file: {figures}")
    assert figures["read back"] > 0
    assert figures["refused"] > 0
