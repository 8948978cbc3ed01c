"""A stack's config as the CLI would hand it to the program, read from Pulumi.<stack>.yaml."""

from __future__ import annotations

import json
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


def load_stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise OverrideError(f"no stack file {path.name}; stacks here: {', '.join(known_stacks(project_dir))}")
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    return {_qualified(str(k)): _text(v) for k, v in config.items()}


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
