"""What a provider mock is handed: the resource being registered, and a seed for its values.

Values derive from the resource's URN, so two runs agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[["MockContext"], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class StoredResource:
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]
    generation: int  # bumped by each replacement, so a replaced resource gets new values


@dataclass
class MockState:
    """URN -> what the last run produced: the offline stand-in for a checkpoint."""

    resources: dict[str, StoredResource] = field(default_factory=dict)


@dataclass(frozen=True)
class MockContext:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]  # plain values (secrets revealed)
    generation: int = 0

    def seed(self, *salt: str) -> bytes:
        parts = (self.urn, str(self.generation), *salt)
        return hashlib.sha256("\0".join(parts).encode()).digest()

    def hex(self, *salt: str, length: int = 64) -> str:
        return self.seed(*salt).hex()[:length]
