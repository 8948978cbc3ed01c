"""Every bad input a new user was seen to try (issue 18) ends in one line naming the key or file
and what is allowed, exit status 2, no traceback; the rough edges that were bugs are fixed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack import clock
from devstack.errors import ConfigError
from tools import rollback
from tools.plan import main
from tools.stackconfig import OverrideError, load_stack_config

ROOT = Path(__file__).resolve().parent.parent


def one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- Pulumi.<stack>.yaml that does not parse or has the wrong shape ---------------------------

STACK_FILES = {
    "unclosed bracket": ("config:\n  devstack:profiles: [standard\n", "is not valid YAML at line 3"),
    "a tab": ("config:\n\tdevstack:phase: 1\n", "(YAML indents with spaces, never tabs)"),
    "a control character": ("config:\n  devstack:phase: 1\x07\n", "is not valid YAML: unacceptable character #x0007"),
    "a list at the top": ("- config\n- phase\n", "must be a YAML map with a config: map, got a list"),
    "config as a list": ("config:\n  - devstack:phase\n", "config: must be a map of key: value, got a list"),
    "config as text": ("config: phase=1\n", "config: must be a map of key: value, got a string"),
    "not UTF-8": ("config:\n  devstack:profiles: \udcff\n", "is not UTF-8 text"),
    "nested too deep": ("config:\n  devstack:features: " + "[" * 2000 + "]" * 2000 + "\n", "nests too deeply"),
}


@pytest.mark.parametrize("case", sorted(STACK_FILES))
def test_a_broken_stack_file_is_named_in_one_line(tmp_path: Path, case: str) -> None:
    text, expected = STACK_FILES[case]
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.bad.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(OverrideError) as refused:
        load_stack_config("bad", project_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith("Pulumi.bad.yaml"), message
    assert expected in message
    assert "\n" not in message


def test_a_folder_in_place_of_the_stack_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").mkdir()
    with pytest.raises(OverrideError, match=r"^Pulumi\.bad\.yaml is a folder; a stack file must be a YAML file$"):
        load_stack_config("bad", project_dir=tmp_path)


@pytest.mark.parametrize("text", ["", "encryptionsalt: v1:abc\n", "config:\n"])
def test_a_stack_file_without_config_is_the_defaults(tmp_path: Path, text: str) -> None:
    (tmp_path / "Pulumi.empty.yaml").write_text(text)
    assert load_stack_config("empty", project_dir=tmp_path) == {}


def test_a_yaml_map_for_a_text_key_says_how_to_write_it(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  devstack:features:\n    tls: off\n    backups: on\n")
    with pytest.raises(OverrideError) as refused:
        load_stack_config("dev", project_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith("devstack:features: ")
    assert "write it as one string: 'tls=off,backups=on'" in message
    assert "YAML reads an unquoted on/off/yes/no as a boolean" in message
    assert "False" not in message


def test_a_map_of_numbers_gets_the_hint_without_the_boolean_note(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  devstack:hostPorts:\n    postgres: 15432\n    mysql: x\n")
    with pytest.raises(OverrideError) as refused:
        load_stack_config("dev", project_dir=tmp_path)
    assert str(refused.value).endswith("write it as one string: 'postgres=15432,mysql=x'")


def test_an_encrypted_value_for_a_devstack_key_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from tools import plan

    monkeypatch.setattr(
        plan, "load_stack_config", lambda _stack: {"devstack:phase": "offline-placeholder", "docker:host": "x"}
    )
    line = one_error_line(capsys)
    assert line.startswith("error: devstack:phase: Pulumi.dev.yaml holds an encrypted (secure:) value")
    assert "`pulumi config set phase VALUE`" in line
    assert "offline-placeholder" not in line


# --- values on the command line ---------------------------------------------------------------

NESTED = '{"postgres": ' + "[" * 5000 + "]" * 5000 + "}"

BAD_VALUES = [
    ("secretIdRotationDays=²", "devstack:secretIdRotationDays: must be a whole number of days from 1 to 29, got '²'"),
    ("secretIdRotationDays=٣", "devstack:secretIdRotationDays: must be a whole number of days from 1 to 29"),
    ("secretIdRotationDays=" + "9" * 5000, "devstack:secretIdRotationDays: must be a whole number of days"),
    ("hostPorts=postgres=²", "devstack:hostPorts: postgres: '²' must be a port 1-65535 or none"),
    ("stateDir=~nosuchuser-devstack/x", "devstack:stateDir: ~nosuchuser-devstack names no user on this machine"),
    (f"hostPorts={NESTED}", "devstack:hostPorts: nests 5001 levels deep"),
    ("profiles=" + "[" * 5000 + "]" * 5000, "devstack:profiles: nests 5000 levels deep"),
    ('profiles={"a": 1}', "devstack:profiles: unknown profile"),
    ("profiles=[1", "devstack:profiles: is not valid JSON"),
    ("memoryBudget=" + "9" * 400 + "GiB", "devstack:memoryBudget: must be a number and a unit"),
    ("hostPorts=postgres=15432,postgres=15433", "devstack:hostPorts: 'postgres' is given twice; give each name once"),
    ('hostPorts={"postgres": 1, "postgres": 2}', "devstack:hostPorts: 'postgres' is given twice"),
    ("hostPorts=postgres=15432,postgres.postgres=15433", "devstack:hostPorts: postgres.postgres is given twice"),
    ("staticIps=postgres=172.20.2.10,postgres=172.20.2.11", "devstack:staticIps: 'postgres' is given twice"),
    ('features={"tls": false}', "devstack:features: tls must be one of off, dual, required, got 'false'"),
    ("linkSubnet=172.20.128.0/30", "devstack:linkSubnet: 172.20.128.0/30 is too small; use a /22 or larger"),
    ("linkSubnet=172.20.128.0/29", "devstack:linkSubnet: 172.20.128.0/29 is too small; use a /22 or larger"),
    ("linkSubnet=172.20.1.0/24", "devstack:linkSubnet: 172.20.1.0/24 overlaps vaultSubnet 172.20.1.0/24"),
    ("flatSubnet=10.0.0.0/8", "devstack:flatSubnet: vaultSubnet 172.20.1.0/24 lies outside flatSubnet 10.0.0.0/8"),
    ("flatSubnet=172.20.0.0/30", "devstack:flatSubnet: 172.20.0.0/30 is too small; use a /29 or larger"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_VALUES, ids=[b[0][:40] for b in BAD_VALUES])
def test_a_bad_value_is_one_line(capsys: pytest.CaptureFixture[str], override: str, expected: str) -> None:
    assert one_error_line(capsys, "--set", override).startswith(f"error: {expected}")


def test_a_static_address_cannot_take_vaults_place_in_another_tier(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_error_line(capsys, "--set", "phase=1", "--set", "staticIps=postgres=172.20.2.5")
    assert line == (
        "error: devstack:staticIps: postgres and vault (joins the data tier as .5) both have address 172.20.2.5"
    )


def test_a_port_that_only_exists_in_dual_mode_clashes_only_there(
    capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert main(["--set", "hostPorts=postgres=8300"]) == 0  # phase 0: vault.https does not listen
    capsys.readouterr()
    line = one_error_line(capsys, "--set", "phase=1", "--set", "hostPorts=postgres=8300")
    assert line == (
        "error: devstack:hostPorts: vault.https and postgres.postgres both publish host port 8300 (with TLS dual)"
    )
    line = one_error_line(capsys, "--set", "hostPorts=mongodb=5432")  # both listen in every mode
    assert line == "error: devstack:hostPorts: postgres.postgres and mongodb.mongodb both publish host port 5432"


@pytest.mark.parametrize("moment", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"])
def test_devstack_now_out_of_range_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], moment: str
) -> None:
    monkeypatch.setenv("DEVSTACK_NOW", moment)
    line = one_error_line(capsys, "--set", "phase=1")
    assert line == (
        f"error: env:DEVSTACK_NOW: must lie between 1970-01-01 and 9979-12-31 (certificates run ten years "
        f"from it), got '{moment}'"
    )


@pytest.mark.parametrize("moment", ["1970-01-01T00:00:00Z", "9979-12-31T00:00:00"])
def test_the_ends_of_the_clock_range_plan(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("DEVSTACK_NOW", moment)
    assert clock.EARLIEST <= clock.now() <= clock.LATEST
    assert main(["certs", "--json", "--set", "phase=1", "--set", "profiles=minimal"]) == 0


# --- tools.rollback without the Pulumi CLI ----------------------------------------------------


def test_rollback_without_the_cli_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("PATH", "")
    assert rollback.main([]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {rollback.CLI_NEEDED}\n"
    assert "the Pulumi CLI" in err


def test_rollback_passes_on_the_clis_own_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(stack: str) -> None:
        raise RuntimeError(f"\n code: 255\n stdout: \n stderr: error: no stack named '{stack}' found\n")

    monkeypatch.setattr(shutil, "which", lambda _name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(rollback, "AutomationStack", refused)
    assert rollback.main(["--stack", "nosuch"]) == 2
    assert capsys.readouterr().err == "error: no stack named 'nosuch' found\n"


@pytest.mark.parametrize(
    ("error", "line"), [(RuntimeError("not found\nmore"), "not found"), (RuntimeError(""), "RuntimeError")]
)
def test_rollback_cli_message_without_an_error_line(error: Exception, line: str) -> None:
    assert rollback._cli_message(error) == line


def test_config_error_keeps_the_environment_key() -> None:
    assert str(ConfigError("env:DEVSTACK_NOW", "x")) == "env:DEVSTACK_NOW: x"
