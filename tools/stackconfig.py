"""A stack's config as the CLI would hand it to the program, read from Pulumi.<stack>.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from tools.engine import PROJECT_DIR

PROJECT = "devstack"
# Encrypted values cannot be read offline; the program only ever sees them as secrets.
SECURE_PLACEHOLDER = "offline-placeholder"


class OverrideError(ValueError):
    pass


def _qualified(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _text(value: object) -> str:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECURE_PLACEHOLDER
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _has_type(value: object, declared: str) -> bool:
    """The real CLI's check of a stack value against Pulumi.yaml's declared type, as observed on
    it (tests/test_toolchain_real.py compares the two): an integer may be written as a YAML
    number with no fraction or a string of digits; a string may be any scalar, not a list or map."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return True  # encrypted: only the program sees the value
    if declared == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) is not None)
    if declared == "string":
        return not isinstance(value, (list, dict))
    return True  # no other type is declared in Pulumi.yaml


def declared_types(project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Pulumi.yaml's `config:` declarations: qualified key -> declared type."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    declared = project.get("config") or {}
    return {
        _qualified(str(k)): str(spec["type"])
        for k, spec in declared.items()
        if isinstance(spec, dict) and "type" in spec
    }


def check_declared_types(stack: str, config: dict[object, object], project_dir: Path = PROJECT_DIR) -> None:
    """Refuses a stack value of another type than Pulumi.yaml declares, as `pulumi preview` and
    `pulumi up` do before the program runs (the mock engine checks nothing)."""
    types = declared_types(project_dir)
    for key, value in config.items():
        declared = types.get(_qualified(str(key)))
        if declared is not None and not _has_type(value, declared):
            shown = json.dumps(value, default=str)
            raise OverrideError(
                f"{_qualified(str(key))}: Pulumi.{stack}.yaml holds {shown}, but Pulumi.yaml declares "
                f"the key of type '{declared}' (the Pulumi CLI refuses the stack){_type_hint(value, declared)}"
            )


def _type_hint(value: object, declared: str) -> str:
    """What to write instead, for the two mistakes a YAML map invites."""
    if declared != "string" or not isinstance(value, dict):
        return ""
    pairs = ",".join(f"{k}={_yaml_word(v)}" for k, v in value.items())
    booleans = any(isinstance(v, bool) for v in value.values())
    note = " (YAML reads an unquoted on/off/yes/no as a boolean)" if booleans else ""
    return f"; write it as one string: '{pairs}'{note}"


def _yaml_word(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"  # what every boolean feature and tls accept
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _read_document(path: Path) -> object:
    """The stack file parsed, or one line naming the file, the place and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise OverrideError(f"{path.name} is a folder; a stack file must be a YAML file") from None
    except UnicodeDecodeError:
        raise OverrideError(f"{path.name} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        hint = " (YAML indents with spaces, never tabs)" if "\t" in text else ""
        raise OverrideError(f"{path.name} is not valid YAML{where}: {error.problem}{hint}") from None
    except yaml.YAMLError as error:  # the reader's errors: a character YAML does not allow
        raise OverrideError(f"{path.name} is not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise OverrideError(f"{path.name} nests too deeply to be a stack file") from None


def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise OverrideError(f"no stack file {path.name}; stacks here: {', '.join(known_stacks(project_dir))}")
    return load_stack_file(path, stack, project_dir)


def load_stack_file(path: Path, stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """A stack file read as the stack's config: another version of it, e.g. the base branch's."""
    if not path.exists():
        raise OverrideError(f"no stack file {path}")
    document = _read_document(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise OverrideError(f"{path.name} must be a YAML map with a config: map, got a {_kind(document)}")
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise OverrideError(f"{path.name}: config: must be a map of key: value, got a {_kind(config)}")
    check_declared_types(stack, config, project_dir)
    # Whatever YAML could nest, json.dumps can write back (the parser's recursion gives out first).
    return {_qualified(str(k)): _text(v) for k, v in config.items()}


def _kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def refuse_encrypted(config: dict[str, str], stack: str) -> None:
    """The offline plan cannot decrypt a `secure:` value; every devstack: key is parsed by the
    program, so an encrypted one could only ever be judged as its placeholder."""
    for key, value in config.items():
        if key.startswith(f"{PROJECT}:") and value == SECURE_PLACEHOLDER:
            raise OverrideError(
                f"{key}: Pulumi.{stack}.yaml holds an encrypted (secure:) value, which the offline plan "
                f"cannot read; no {PROJECT} key is a secret: set it in plain text with "
                f"`pulumi config set {key.partition(':')[2]} VALUE`"
            )


def known_stacks(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def apply_overrides(config: dict[str, str], overrides: Iterable[str]) -> dict[str, str]:
    """`key=value` pairs on top of a stack's config; the value is taken whole (commas included)."""
    merged = dict(config)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OverrideError(f"--set takes key=value, got '{item}'")
        merged[_qualified(key.strip())] = value
    return merged
