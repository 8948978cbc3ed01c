"""The offline plan refuses a stack whose values do not have the types Pulumi.yaml declares, as
the real CLI does before the program runs (the mock engine checks nothing). CASES is what the
real CLI was seen to accept; tests/test_toolchain_real.py holds the CLI to the same table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.stackconfig import OverrideError, load_stack_config

ROOT = Path(__file__).resolve().parent.parent

# (key, the value as written in Pulumi.<stack>.yaml, whether the CLI accepts it)
CASES: list[tuple[str, str, bool]] = [
    *(("phase", text, True) for text in ("3", '"3"', '"-2"', '"+3"', '"007"', "1.0")),
    *(("phase", text, False) for text in ("abc", "1.5", "true", '"true"', "[1, 2]", "{a: 1}", "null", '""')),
    *(("phase", text, False) for text in ('"0x10"', '" 3"', '"3.0"')),
    *(("profiles", text, True) for text in ("3", "abc", "1.5", "true", "null", '""')),
    *(("profiles", text, False) for text in ("[1, 2]", "{a: 1}")),
    # What `pulumi config set --path devstack:hostPorts.postgres 15432` writes: a map, refused.
    ("hostPorts", "postgres=15432", True),
    ("hostPorts", "{postgres: 15432}", False),
]


def write_stack(folder: Path, key: str, text: str, extra: str = "") -> None:
    """A project folder with our Pulumi.yaml and a dev stack holding one value."""
    shutil.copy(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    (folder / "Pulumi.dev.yaml").write_text(f"config:\n  devstack:{key}: {text}\n{extra}")


def offline_accepts(folder: Path) -> bool:
    try:
        load_stack_config("dev", project_dir=folder)
    except OverrideError:
        return False
    return True


@pytest.mark.parametrize(("key", "text", "accepted"), CASES)
def test_offline_config_check_matches_the_cli(tmp_path: Path, key: str, text: str, accepted: bool) -> None:
    write_stack(tmp_path, key, text)
    assert offline_accepts(tmp_path) == accepted


def test_the_refusal_names_the_key_the_value_and_the_declared_type(tmp_path: Path) -> None:
    write_stack(tmp_path, "hostPorts", "{postgres: 15432}")
    with pytest.raises(OverrideError) as refused:
        load_stack_config("dev", project_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith("devstack:hostPorts: ")
    assert '{"postgres": 15432}' in message
    assert "type 'string'" in message


def test_a_secret_value_is_not_checked_offline(tmp_path: Path) -> None:
    write_stack(tmp_path, "phase", "\n    secure: v1:AAAA")
    assert offline_accepts(tmp_path)
