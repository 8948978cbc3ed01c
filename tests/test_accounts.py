"""The generated account scripts as text: quoting, idempotent structure, validation (no servers).

The MongoDB script also runs under node against a fake `db`, and the RabbitMQ script under sh
against a fake rabbitmqctl, to check their logic; tests/test_accounts_real.py runs the SQL and
the Redis ACLs against real servers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.accounts import MAX_NAME_LENGTH, Account, AccountKind, validate_name
from devstack.services.mongodb import mongo_setup_js
from devstack.services.mysql import mysql_literal, mysql_setup_sql
from devstack.services.postgres import pg_literal, postgres_setup_sql, saslprep
from devstack.services.rabbitmq import rabbitmq_setup_sh
from devstack.services.redis import RedisRole, RedisUser, redis_acl_lines, sha256_hex

TRICKY = 'it\'s "q" \\ $1 $$ `x` :v ;-- \\gexec %_ é'
INJECTION = "x'; DROP ROLE victim; --"


def _app(name: str = "app1", password: str = TRICKY, database: str | None = "app1") -> Account:
    return Account(name, password, database)


MONITOR = Account("vector", "monitor-pass", kind=AccountKind.MONITOR)
POOLER = Account("pgbouncer", "pooler-pass")


# --- names and passwords ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "app1", "reference-api", "golang_api", "a" * MAX_NAME_LENGTH])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name
    assert Account(name, "p", name).database == name


@pytest.mark.parametrize(
    "name",
    ["", "1app", "App", "-app", "_app", "app 1", "app'1", 'app"1', "app;1", "app`1", "app$1", "app.1", "a" * 33, "é"],
)
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="must"):
        validate_name(name)
    with pytest.raises(ValueError, match="account name"):
        Account(name, "p")
    with pytest.raises(ValueError, match="database of account"):
        Account("app", "p", database=name)
    with pytest.raises(ValueError, match="Redis user name"):
        RedisUser.with_password(name, "p")


@pytest.mark.parametrize("password", ["", "a\x00b"])
def test_unusable_passwords_are_rejected(password: str) -> None:
    with pytest.raises(ValueError, match="password"):
        Account("app", password)


def test_password_stays_out_of_repr() -> None:
    assert TRICKY not in repr(_app())
    user = RedisUser.with_password("app1", "secret")
    assert user.password_sha256 not in repr(user)


def test_kinds_given_as_strings_are_checked() -> None:
    assert Account("vector", "p", kind="monitor").kind is AccountKind.MONITOR  # type: ignore[arg-type]
    assert RedisUser.with_password("exp", "p", "exporter").role is RedisRole.EXPORTER  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="monitr"):
        Account("vector", "p", kind="monitr")  # type: ignore[arg-type]


def test_monitor_has_no_database() -> None:
    with pytest.raises(ValueError, match="no database"):
        Account("vector", "p", "vector", AccountKind.MONITOR)


def test_duplicates_are_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        postgres_setup_sql([_app(), _app(database="other")])
    with pytest.raises(ValueError, match="two accounts"):
        mysql_setup_sql([_app("a", database="shared"), _app("b", database="shared")])
    with pytest.raises(ValueError, match="twice"):
        redis_acl_lines(sha256_hex("x"), [RedisUser.with_password("a", "p"), RedisUser.with_password("a", "q")])


@pytest.mark.parametrize(
    ("build", "account"),
    [
        (postgres_setup_sql, Account("postgres", "p")),
        (postgres_setup_sql, Account("pg_monitor", "p")),
        (postgres_setup_sql, Account("public", "p")),
        (postgres_setup_sql, Account("app", "p", "template1")),
        (postgres_setup_sql, Account("app", "p", "postgres")),
        (mysql_setup_sql, Account("root", "p")),
        (mysql_setup_sql, Account("app", "p", "mysql")),
        (mysql_setup_sql, Account("app", "p", "performance_schema")),
        (lambda a: mongo_setup_js("root", "r", a), Account("app", "p", "admin")),
        (lambda a: mongo_setup_js("root", "r", a), Account("app", "p", "local")),
    ],
)
def test_reserved_names_are_rejected(build: Callable[[list[Account]], str], account: Account) -> None:
    with pytest.raises(ValueError, match="reserved"):
        build([account])


def test_redis_default_user_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved"):
        RedisUser.with_password("default", "p")


# --- PostgreSQL -------------------------------------------------------------------------------


def _unquote_pg(literal: str) -> str:
    assert literal.startswith("'")
    assert literal.endswith("'")
    body = literal[1:-1]
    assert re.fullmatch(r"(?:[^']|'')*", body), "an unescaped quote would end the literal"
    return body.replace("''", "'")


def test_postgres_literal_round_trips() -> None:
    for value in (TRICKY, INJECTION, "'", "''", "\\", "\\'", "$$", "\n"):
        assert _unquote_pg(pg_literal(value)) == value


def _verifier_line(script: str, role: str) -> str:
    (line,) = [x for x in script.splitlines() if x.startswith(f'ALTER ROLE "{role}" WITH LOGIN')]
    return line


def test_postgres_script_holds_a_scram_verifier_never_the_password() -> None:
    for password in (TRICKY, INJECTION, "'", "\\", "$$", "\n", "pw"):
        script = postgres_setup_sql([_app(password=password)], salt_key="admin-password")
        if len(password) > 3:  # (a short one is bound to occur in the script's own text)
            assert password not in script
        verifier = re.fullmatch(r".* PASSWORD '(SCRAM-SHA-256\$4096:[^']+)';", _verifier_line(script, "app1"))
        assert verifier is not None
        assert _scram_matches(verifier.group(1), password)
        assert not _scram_matches(verifier.group(1), password + "x")


def _scram_matches(stored: str, password: str) -> bool:
    """An independent check of a verifier (the real test: PostgreSQL itself logs the role in)."""
    head, keys = stored.rsplit("$", 1)
    iterations, salt = head.removeprefix("SCRAM-SHA-256$").split(":")
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key, server = (base64.b64decode(k) for k in keys.split(":"))
    return hashlib.sha256(client_key).digest() == stored_key and server_key == server


def test_postgres_salt_is_stable_for_the_same_inputs_and_new_for_a_new_password() -> None:
    one = _verifier_line(postgres_setup_sql([_app(password="a")], salt_key="k"), "app1")
    assert one == _verifier_line(postgres_setup_sql([_app(password="a")], salt_key="k"), "app1")
    assert one != _verifier_line(postgres_setup_sql([_app(password="b")], salt_key="k"), "app1")
    assert one != _verifier_line(postgres_setup_sql([_app(password="a")], salt_key="other"), "app1")
    # Without a key (a test's own script) every run draws a new salt.
    assert one != _verifier_line(postgres_setup_sql([_app(password="a")]), "app1")


@pytest.mark.parametrize(
    ("password", "prepared"),
    [
        ("plain ASCII \t", "plain ASCII \t"),  # ASCII is taken as it is, control characters too
        ("caf\u00e9", "caf\u00e9"),
        ("cafe\u0301", "caf\u00e9"),  # NFKC
        ("a\u00adb", "ab"),  # B.1: mapped to nothing
        ("a\u2003b", "a b"),  # C.1.2: a non-ASCII space becomes a space
        ("\ufb01x", "fix"),  # compatibility ligature
        ("a\u200eb\u0301", "a\u200eb\u0301"),  # prohibited (C.8) after mapping: the raw password
        ("\u05d0a", "\u05d0a"),  # right-to-left then left-to-right: the raw password
        ("\u05d0\u05d1", "\u05d0\u05d1"),
        ("\u00ad", "\u00ad"),  # nothing left after mapping: the raw password
    ],
)
def test_postgres_saslprep(password: str, prepared: str) -> None:
    assert saslprep(password) == prepared


def test_postgres_script_is_idempotent_by_construction() -> None:
    script = postgres_setup_sql([_app(), MONITOR, POOLER], "pgbouncer", salt_key="k")
    assert script == postgres_setup_sql([_app(), MONITOR, POOLER], "pgbouncer", salt_key="k")  # deterministic
    lines = script.splitlines()
    # Every CREATE ROLE / CREATE DATABASE is conditional (\gexec of a guarded SELECT).
    for line in lines:
        if re.search(r"\bCREATE (ROLE|DATABASE)\b", line):
            assert line.startswith("SELECT 'CREATE ")
            assert "WHERE NOT EXISTS" in line
            assert line.endswith("\\gexec")
    assert lines[1] == "\\set ON_ERROR_STOP on"
    assert "SET password_encryption = 'scram-sha-256';" in lines
    assert "SET standard_conforming_strings = on;" in lines
    assert any("current_database() <> 'postgres'" in line for line in lines)
    # The password is set on every run, so a new one replaces the old.
    assert sum(line.startswith('ALTER ROLE "app1" WITH LOGIN') for line in lines) == 1
    assert 'REVOKE ALL ON DATABASE "app1" FROM PUBLIC;' in lines
    assert 'GRANT CONNECT, TEMPORARY ON DATABASE "app1" TO "app1";' in lines
    assert 'ALTER DATABASE "app1" OWNER TO "app1";' in lines
    # No superuser-ish attribute for anyone.
    for line in lines:
        if line.startswith("ALTER ROLE") and " WITH " in line:
            assert "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" in line


def test_postgres_monitor_and_pooler() -> None:
    lines = postgres_setup_sql([_app(), MONITOR, POOLER], "pgbouncer").splitlines()
    assert any(line.startswith("SELECT 'GRANT pg_monitor TO \"vector\"'") for line in lines)
    assert 'ALTER ROLE "vector" SET default_transaction_read_only = on;' in lines
    assert not any("DATABASE" in line and '"vector"' in line and "postgres" not in line for line in lines)
    grants = [line for line in lines if line.startswith("GRANT EXECUTE ON FUNCTION pgbouncer.get_auth")]
    assert grants == ['GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO "pgbouncer";']
    assert "REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;" in lines
    text = "\n".join(lines)
    assert "SECURITY DEFINER" in text
    assert "SET search_path = pg_catalog, pg_temp" in text
    assert "NOT a.rolsuper" in text
    # Recreated atomically on every run: no stale EXECUTE grant survives a change of auth_user.
    begin, commit = lines.index("BEGIN;"), lines.index("COMMIT;")
    assert begin < lines.index("DROP FUNCTION IF EXISTS pgbouncer.get_auth(text);") < commit


def test_postgres_script_refuses_to_touch_superusers_first() -> None:
    lines = postgres_setup_sql([_app(), MONITOR]).splitlines()
    (guard,) = [i for i, line in enumerate(lines) if "$guard$" in line]
    assert "rolname IN ('app1', 'vector') AND (rolsuper OR rolname = CURRENT_USER)" in lines[guard]
    assert guard < min(i for i, line in enumerate(lines) if line.startswith(("ALTER", "SELECT", "GRANT")))


def test_postgres_without_pooler_drops_the_function() -> None:
    script = postgres_setup_sql([_app()])
    assert "DROP FUNCTION IF EXISTS pgbouncer.get_auth(text);" in script
    assert "CREATE FUNCTION" not in script


@pytest.mark.parametrize(
    ("accounts", "pooler", "message"),
    [
        ([_app()], "pgbouncer", "not one of the accounts"),
        ([_app("pgbouncer", database="pgbouncer")], "pgbouncer", "without a database"),
        ([Account("pgbouncer", "p", kind=AccountKind.MONITOR)], "pgbouncer", "without a database"),
    ],
)
def test_postgres_pooler_must_be_a_plain_login(accounts: list[Account], pooler: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        postgres_setup_sql(accounts, pooler)


# --- MySQL / MariaDB --------------------------------------------------------------------------


def _unquote_mysql(literal: str) -> str:
    assert literal.startswith("'")
    assert literal.endswith("'")
    body, out, i = literal[1:-1], [], 0
    escapes = {"\\": "\\", "n": "\n", "r": "\r", "Z": "\x1a", "'": "'", '"': '"', "0": "\x00"}
    while i < len(body):
        char = body[i]
        if char == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
        elif char == "'":
            assert body[i + 1] == "'", "an unescaped quote would end the literal"
            out.append("'")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def test_mysql_password_literal_round_trips() -> None:
    for password in (TRICKY, INJECTION, "'", "\\", "\\'", "'\\", "a\nb\r\x1a", "%_"):
        assert _unquote_mysql(mysql_literal(password)) == password


def test_mysql_script_structure() -> None:
    script = mysql_setup_sql(
        [_app("golang-api", database="golang_api"), Account("exporter", "e", kind=AccountKind.MONITOR)]
    )
    lines = script.splitlines()
    # sql_mode first: no NO_BACKSLASH_ESCAPES, so the escaped backslashes mean what they say
    first_literal = next(i for i, line in enumerate(lines) if "IDENTIFIED BY" in line)
    assert lines.index("SET SESSION sql_mode = 'STRICT_ALL_TABLES';") < first_literal
    literal = mysql_literal(TRICKY)
    assert f"CREATE USER IF NOT EXISTS 'golang-api'@'%' IDENTIFIED BY {literal};" in lines
    assert f"ALTER USER 'golang-api'@'%' IDENTIFIED BY {literal};" in lines
    assert "CREATE DATABASE IF NOT EXISTS `golang_api`;" in lines
    # `_` is a wildcard in GRANT ... ON db.*: escaped so only this database matches
    assert "GRANT ALL PRIVILEGES ON `golang\\_api`.* TO 'golang-api'@'%';" in lines
    assert "GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'exporter'@'%';" in lines
    assert not any("exporter" in line and "ALL PRIVILEGES" in line for line in lines)
    assert not any("GRANT ALL" in line and "*.*" in line for line in lines)


def test_mysql_password_cannot_inject() -> None:
    script = mysql_setup_sql([_app(password=INJECTION)])
    assert script.replace(mysql_literal(INJECTION), "'<password>'").count("victim") == 0


# --- Redis ------------------------------------------------------------------------------------


def test_sha256_hex_is_the_redis_verifier() -> None:
    assert sha256_hex("password") == "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
    assert sha256_hex("é") == hashlib.sha256(b"\xc3\xa9").hexdigest()  # of the UTF-8 bytes


def test_redis_acl_lines() -> None:
    admin = sha256_hex("admin-pass")
    lines = redis_acl_lines(
        admin,
        [
            RedisUser.with_password("app1", "app-pass"),
            RedisUser.with_password("exporter", "exp-pass", RedisRole.EXPORTER),
        ],
    )
    assert lines[0] == f"user default on #{admin} ~* &* +@all"
    app, exporter = lines[1].split(), lines[2].split()
    assert app[:4] == ["user", "app1", "reset", "on"]
    assert app[4] == "#" + sha256_hex("app-pass")
    assert "~app1:*" in app
    assert "&app1:*" in app
    assert not any(rule in ("~*", "&*", "+@all", "allkeys", "allchannels", "nopass") for rule in app + exporter)
    # deny rules come after the grants, so they win
    assert app.index("-@admin") > app.index("+@connection")
    assert app.index("-@dangerous") > app.index("+@write")
    assert exporter[4] == "#" + sha256_hex("exp-pass")
    assert exporter[5:8] == ["resetkeys", "resetchannels", "-@all"]
    for command in (
        "+info",
        "+ping",
        "+config|get",
        "+client|list",
        "+cluster|info",
        "+slowlog|get",
        "+latency|latest",
    ):
        assert command in exporter
    assert not any(rule.startswith(("~", "%", "&", "+@")) for rule in exporter)
    for password in ("admin-pass", "app-pass", "exp-pass"):
        assert all(password not in line for line in lines)


@pytest.mark.parametrize("verifier", ["", "abc", "G" * 64, "A" * 64, "0" * 63, "0" * 64 + " nopass"])
def test_redis_rejects_malformed_verifiers(verifier: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        redis_acl_lines(verifier, [])
    with pytest.raises(ValueError, match="SHA-256"):
        RedisUser("app1", verifier)


# --- MongoDB ----------------------------------------------------------------------------------

MONGO_ACCOUNTS = [_app("reference-api", database="reference_api"), Account("vector", "v1", kind=AccountKind.MONITOR)]


def _mongo_spec(script: str) -> dict:
    match = re.search(r"const spec = (\{.*?\});", script)
    assert match is not None
    return json.loads(match.group(1))


def test_mongo_script_is_one_ascii_line_with_json_literals() -> None:
    script = mongo_setup_js("root", "adm'in\"\\", MONGO_ACCOUNTS)
    assert script.count("\n") == 1
    assert script.endswith("\n")
    assert script.isascii()
    spec = _mongo_spec(script)
    assert spec["admin"] == {"user": "root", "pwd": "adm'in\"\\"}
    app, monitor = spec["accounts"]
    assert app == {
        "user": "reference-api",
        "pwd": TRICKY,
        "db": "reference_api",
        "roles": [{"role": "readWrite", "db": "reference_api"}],
    }
    assert monitor["db"] == "admin"
    assert monitor["roles"] == [{"role": "clusterMonitor", "db": "admin"}, {"role": "read", "db": "local"}]


def test_mongo_account_cannot_replace_the_admin() -> None:
    with pytest.raises(ValueError, match="replace the admin"):
        mongo_setup_js("root", "r", [Account("root", "p", kind=AccountKind.MONITOR)])
    assert mongo_setup_js("root", "r", [Account("root", "p", "root")])  # another database: another user


def test_mongo_app_needs_a_database() -> None:
    with pytest.raises(ValueError, match="needs a database"):
        mongo_setup_js("root", "r", [Account("app", "p")])
    with pytest.raises(ValueError, match="admin"):
        mongo_setup_js("", "r", [])


# A fake mongosh `db`: users per database, admin authentication required first.
_FAKE_MONGOSH = r"""
const fs = require("fs");
const vm = require("vm");
const { admin, scripts } = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const users = {};
const calls = [];
let authenticated = false;
class Quit extends Error { constructor(code) { super("quit"); this.code = code; } }
function need() { if (!authenticated) throw new Error("command requires authentication"); }
function database(name) {
  return {
    getSiblingDB: (other) => database(other),
    auth(user, pwd) {
      calls.push(["auth", name, user]);
      if (name !== "admin" || user !== admin.user || pwd !== admin.pwd) throw new Error("Authentication failed.");
      authenticated = true;
      return { ok: 1 };
    },
    getUser(user) {
      need(); calls.push(["getUser", name, user]);
      const u = users[name + "." + user];
      return u ? { user: u.user, db: name, roles: u.roles } : null;
    },
    createUser(doc) {
      need(); calls.push(["createUser", name, doc.user]);
      if (users[name + "." + doc.user]) throw new Error("User already exists");
      users[name + "." + doc.user] = JSON.parse(JSON.stringify(doc));
      return { ok: 1 };
    },
    updateUser(user, doc) {
      need(); calls.push(["updateUser", name, user]);
      if (!users[name + "." + user]) throw new Error("User not found");
      Object.assign(users[name + "." + user], JSON.parse(JSON.stringify(doc)));
      return { ok: 1 };
    },
  };
}
const results = [];
for (const script of scripts) {
  authenticated = false;
  calls.length = 0;
  const output = [];
  const print = (...a) => output.push(a.join(" "));
  const context = { db: database("test"), print, quit: (c) => { throw new Quit(c); } };
  let code = 0;
  try { vm.runInNewContext(script, context); } catch (e) { if (e instanceof Quit) code = e.code; else throw e; }
  results.push({ code, calls: calls.slice(), output, users: JSON.parse(JSON.stringify(users)) });
}
process.stdout.write(JSON.stringify(results));
"""


def _run_fake_mongosh(tmp_path: Path, admin: tuple[str, str], scripts: list[str]) -> list[dict]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    harness, data = tmp_path / "fake_mongosh.js", tmp_path / "input.json"
    harness.write_text(_FAKE_MONGOSH)
    data.write_text(json.dumps({"admin": {"user": admin[0], "pwd": admin[1]}, "scripts": scripts}))
    result = subprocess.run([node, str(harness), str(data)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_mongo_script_creates_then_updates(tmp_path: Path) -> None:
    admin = ("root", "r00t'\"\\ pw")
    second = [
        _app("reference-api", "new pass '\"\\", "reference_api"),
        Account("vector", "v2", kind=AccountKind.MONITOR),
    ]
    first_run, rerun, changed = _run_fake_mongosh(
        tmp_path,
        admin,
        [
            mongo_setup_js(*admin, MONGO_ACCOUNTS),
            mongo_setup_js(*admin, MONGO_ACCOUNTS),
            mongo_setup_js(*admin, second),
        ],
    )
    assert first_run["code"] == 0, first_run["output"]
    assert first_run["calls"][0] == ["auth", "admin", "root"]
    assert ["createUser", "reference_api", "reference-api"] in first_run["calls"]
    assert ["createUser", "admin", "vector"] in first_run["calls"]
    app = first_run["users"]["reference_api.reference-api"]
    assert app["pwd"] == TRICKY
    assert app["roles"] == [{"role": "readWrite", "db": "reference_api"}]
    assert app["mechanisms"] == ["SCRAM-SHA-256"]
    assert first_run["users"]["admin.vector"]["roles"] == [
        {"role": "clusterMonitor", "db": "admin"},
        {"role": "read", "db": "local"},
    ]
    for run in (rerun, changed):
        assert run["code"] == 0, run["output"]
        assert not any(call[0] == "createUser" for call in run["calls"])
        assert ["updateUser", "reference_api", "reference-api"] in run["calls"]
    assert changed["users"]["reference_api.reference-api"]["pwd"] == "new pass '\"\\"
    assert changed["users"]["admin.vector"]["pwd"] == "v2"
    for run in (first_run, rerun, changed):
        printed = "\n".join(run["output"])
        assert "pass" not in printed
        assert TRICKY not in printed
        assert admin[1] not in printed


def test_mongo_script_fails_with_wrong_admin_password(tmp_path: Path) -> None:
    (run,) = _run_fake_mongosh(tmp_path, ("root", "right"), [mongo_setup_js("root", "wrong", MONGO_ACCOUNTS)])
    assert run["code"] == 1
    assert run["users"] == {}
    assert any("Authentication failed" in line for line in run["output"])


# --- RabbitMQ ---------------------------------------------------------------------------------

# A fake rabbitmqctl: records argv and whatever it reads on stdin, keeps users in a JSON file.
_FAKE_RABBITMQCTL = """\
import json, os, sys
state_path = os.environ["FAKE_RABBITMQ_STATE"]
with open(state_path) as f:
    state = json.load(f)
args = [a for a in sys.argv[1:] if a not in ("--silent", "-s", "-q")]
stdin = sys.stdin.read()
state["calls"].append({"argv": sys.argv[1:], "stdin": stdin})
command = args[0]
if command == "list_vhosts":
    print("\\n".join(state["vhosts"]))
elif command == "add_vhost":
    state["vhosts"].append(args[1])
elif command == "list_users":
    print("\\n".join(f"{u}\\t[{','.join(state['tags'].get(u, []))}]" for u in state["users"]))
elif command == "set_user_tags":
    state["tags"][args[1]] = args[2:]
elif command == "add_user":
    if args[1] in state["users"]:
        print("user already exists", file=sys.stderr)
        sys.exit(70)
    state["users"][args[1]] = stdin.strip()
elif command == "change_password":
    if args[1] not in state["users"]:
        sys.exit(70)
    state["users"][args[1]] = stdin.strip()
with open(state_path, "w") as f:
    json.dump(state, f)
"""


# dash reads a piped script in blocks; bash and busybox ash (the rabbitmq image's sh) read it as
# they go, so there a command that reads stdin would swallow the rest of the script.
SHELLS = [("sh",), ("bash",), ("busybox", "sh")]


def _run_rabbitmq(
    tmp_path: Path, shell: tuple[str, ...], script: str, state: Path, *, expect_failure: bool = False
) -> None:
    binary = shutil.which(shell[0])
    if binary is None:
        pytest.skip(f"{shell[0]} is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "rabbitmqctl"
    fake.write_text(f"#!{sys.executable}\n{_FAKE_RABBITMQCTL}")
    fake.chmod(0o755)
    result = subprocess.run(
        [binary, *shell[1:], "-s"],  # the script on the shell's stdin, as `docker exec -i ... sh -s`
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_RABBITMQ_STATE": str(state)},
        check=False,
    )
    if expect_failure:
        assert result.returncode != 0
        assert "refusing to change administrator" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_rabbitmq_script_passes_passwords_on_stdin_only(tmp_path: Path, shell: tuple[str, ...]) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"vhosts": ["/"], "users": {"guest": "guest"}, "tags": {}, "calls": []}))
    app_pw = 'it\'s "q" \\ $1 `x` $(id)'
    first = [Account("golang-api", app_pw), Account("vector", "mon pw", kind=AccountKind.MONITOR)]
    _run_rabbitmq(tmp_path, shell, rabbitmq_setup_sh(first, "dev_vhost"), state)
    after_first = json.loads(state.read_text())
    assert after_first["vhosts"] == ["/", "dev_vhost"]
    assert after_first["users"] == {"guest": "guest", "golang-api": app_pw, "vector": "mon pw"}

    second = [Account("golang-api", "changed"), Account("vector", "mon pw 2", kind=AccountKind.MONITOR)]
    _run_rabbitmq(tmp_path, shell, rabbitmq_setup_sh(second, "dev_vhost"), state)
    final = json.loads(state.read_text())
    assert final["vhosts"] == ["/", "dev_vhost"]  # not added twice
    assert final["users"] == {"guest": "guest", "golang-api": "changed", "vector": "mon pw 2"}

    calls = final["calls"]
    second_run = calls[len(after_first["calls"]) :]
    assert [c["argv"][1:3] for c in second_run if c["argv"][1] in ("add_user", "change_password")] == [
        ["change_password", "golang-api"],
        ["change_password", "vector"],
    ]
    for call in calls:
        for password in (app_pw, "mon pw", "changed", "mon pw 2"):
            assert password not in call["argv"]
        if call["argv"][1] not in ("add_user", "change_password"):
            assert call["stdin"] == "", call  # nothing else reads the script or a password
    permissions = {c["argv"][4]: c["argv"][5:] for c in calls if c["argv"][1] == "set_permissions"}
    assert permissions["vector"] == ["^$", "^$", "^$"]
    configure, write, read = permissions["golang-api"]
    assert re.fullmatch(configure, "golang-api.jobs")
    assert re.fullmatch(configure, "amq.gen-Xy")
    assert not re.fullmatch(configure, "other.jobs")
    assert not re.fullmatch(configure, "golang-apiX")
    assert re.fullmatch(write, "amq.default")
    assert not re.fullmatch(read, "amq.default")
    tags = {c["argv"][2]: c["argv"][3:] for c in calls if c["argv"][1] == "set_user_tags"}
    assert tags == {"golang-api": [], "vector": ["monitoring"]}


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_rabbitmq_script_never_takes_over_an_administrator(tmp_path: Path, shell: tuple[str, ...]) -> None:
    state = tmp_path / "state.json"
    initial = {"vhosts": ["/"], "users": {"admin": "a"}, "tags": {"admin": ["administrator"]}, "calls": []}
    state.write_text(json.dumps(initial))
    script = rabbitmq_setup_sh([Account("app", "p"), Account("admin", "x")])
    _run_rabbitmq(tmp_path, shell, script, state, expect_failure=True)
    final = json.loads(state.read_text())
    assert final["users"] == {"admin": "a"}
    assert final["tags"] == {"admin": ["administrator"]}


@pytest.mark.parametrize("password", [" lead", "trail ", "two\nlines", "cr\r"])
def test_rabbitmq_rejects_passwords_it_would_trim(password: str) -> None:
    with pytest.raises(ValueError, match="whitespace"):
        rabbitmq_setup_sh([Account("app", password)])


def test_rabbitmq_heredoc_delimiter_never_equals_the_password() -> None:
    script = rabbitmq_setup_sh([Account("app", "DEVSTACK_PASSWORD_END")])
    assert "<<'DEVSTACK_PASSWORD_END_'" in script
    with pytest.raises(ValueError, match="vhost"):
        rabbitmq_setup_sh([], "bad vhost")
