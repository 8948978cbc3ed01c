"""The memory budget: sizes as users type them, and each container's limit derived from it.

The rule, in one line: every running service first gets its floor (what its image needs to
start), and whatever the budget has left is shared out in proportion to the services' weights:

    limit = floor + (budget - sum of floors) * weight / sum of weights      (MiB, rounded down)

Floors and weights live in each service's module (model.Limits); the reservation (Docker's soft
limit, what the engine reclaims down to under memory pressure) is the floor. Rounding down keeps
the limits' sum within the budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from devstack.errors import ConfigError
from devstack.model import Profile, Service

# Binary units, as Docker reads them (`--memory 8g` is 8 GiB): 8GiB, 8g, 8G, 8192MB, 8192m.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt])(?:i?b)?\s*$", re.IGNORECASE)
_UNIT_MIB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
SIZE_FORMS = "a number and a unit, e.g. 8GiB, 8g, 8192MiB or 8192MB (K, M, G, T; binary: 1g = 1024m)"

# The budget a selection gets when the config names none: the largest of these its profiles
# reach, plus what `reference` adds (its five APIs, and MySQL when nothing else brings it).
DEFAULT_BUDGET_MIB = MappingProxyType(
    {Profile.MINIMAL: 2048, Profile.STANDARD: 4096, Profile.FULL: 6144, Profile.REFERENCE: 2048}
)
_ADDITIVE = frozenset({Profile.REFERENCE})


def parse_size(key: str, text: str) -> int:
    """A size in MiB (rounded down), or a ConfigError naming the forms allowed."""
    match = _SIZE.match(text)
    if match is None or len(match.group(1)) > 12:  # no machine has a petabyte: never a float overflow
        raise ConfigError(key, f"must be {SIZE_FORMS}, got '{text}'")
    mib = int(float(match.group(1)) * _UNIT_MIB[match.group(2).lower()])
    if mib < 1:
        raise ConfigError(key, f"must be at least 1MiB, got '{text}'")
    return mib


def format_mib(mib: int) -> str:
    """8192 -> '8GiB', 1536 -> '1536MiB': the form `parse_size` reads back."""
    return f"{mib // 1024}GiB" if mib % 1024 == 0 else f"{mib}MiB"


def default_budget(profiles: Iterable[Profile]) -> int:
    chosen = set(profiles)
    base = max((DEFAULT_BUDGET_MIB[p] for p in chosen - _ADDITIVE), default=0)
    return base + sum(DEFAULT_BUDGET_MIB[p] for p in chosen & _ADDITIVE)


@dataclass(frozen=True)
class Allocation:
    limit_mb: int  # the container's hard limit
    reservation_mb: int  # Docker's soft limit: the floor


def minimum_budget(services: Iterable[Service]) -> int:
    return sum(s.limits.floor_mb for s in services)


def allocate(key: str, services: Iterable[Service], budget_mb: int) -> Mapping[str, Allocation]:
    """Each service's limit by the module's rule; a budget below the floors is refused."""
    chosen = tuple(services)
    floors = minimum_budget(chosen)
    if budget_mb < floors:
        raise ConfigError(
            key,
            f"{format_mib(budget_mb)} is below what the selected services need to start; "
            f"the smallest budget that works is {format_mib(floors)}",
        )
    spare = budget_mb - floors
    weights = sum(s.limits.weight for s in chosen)
    return MappingProxyType(
        {
            s.name: Allocation(
                s.limits.floor_mb + (spare * s.limits.weight // weights if weights else 0), s.limits.floor_mb
            )
            for s in chosen
        }
    )
