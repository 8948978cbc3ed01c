"""One cache of plans for the whole test session, shared by conftest's `shared_plan` and by
tests/shipped.py, so that each distinct configuration is planned once, whichever test, sweep or
helper asks first and however its overrides are spelled.

The key is exactly what a run reads: the stack, the whole resolved config (after overrides, so
`phase=0` and the dev stack's own phase are one entry), the environment variables the program
reads (ENV_INPUTS; tests/test_plancache.py fails when the program reads another one) and the
mock engine's pinned clock (tls_mocks.set_clock).
Every caller gets the same plan, frozen all the way down: changing any list, dict, record or
the state raises TypeError, so one test cannot change what the next is handed. A test that
wants to edit a plan (plant a defect, carry its state into a second run) takes its own mutable
copy with `copy.deepcopy(plan)`. A test that patches the program itself (monkeypatch) must run
its own plan with conftest's `plan`, never this cache: test_plancache.py checks that none does.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gc
import os
from collections.abc import Mapping
from typing import Any, NoReturn

from tools.engine import PlanRun, ResourceRecord, Secret, run_program, tls_mocks
from tools.engine.context import MockState, StoredResource
from tools.stackconfig import apply_overrides, load_stack_config

# Every environment variable the program reads (devstack/clock.py, devstack/settings.py).
ENV_INPUTS = ("DEVSTACK_NOW", "HOME", "XDG_CONFIG_HOME")

_PLANS: dict[tuple[object, ...], PlanRun] = {}


def _refuse(*_args: object, **_kwargs: object) -> NoReturn:
    raise TypeError("a shared plan is read-only: edit a copy (copy.deepcopy) or run your own with `plan`")


class FrozenDict(dict):
    """A dict that refuses every change; its copies are plain dicts."""

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict:
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list):
    """A list that refuses every change; its copies are plain lists."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = reverse = sort = clear = _refuse

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


class _FrozenObject:
    """A dataclass instance whose fields cannot be reassigned; its deep copy is the plain class."""

    _plain: type

    __setattr__ = __delattr__ = _refuse

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # `type(run)(...)` builds a new plan (or record) of the caller's own: the plain, mutable kind.
        return cls._plain(*args, **kwargs)

    @classmethod
    def of(cls, plain: Any, **fields: Any) -> Any:
        frozen = object.__new__(cls)
        for f in dataclasses.fields(plain):
            object.__setattr__(frozen, f.name, fields[f.name] if f.name in fields else freeze(getattr(plain, f.name)))
        return frozen

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self._plain))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self._plain):
            return NotImplemented
        return self._values() == tuple(getattr(other, f.name) for f in dataclasses.fields(self._plain))

    __hash__ = None  # type: ignore[assignment]  # like the plain dataclasses

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self._plain(*(copy.deepcopy(v, memo) for v in self._values()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (self._plain, self._values())


class FrozenRecord(_FrozenObject, ResourceRecord):
    _plain = ResourceRecord


class FrozenState(_FrozenObject, MockState):
    _plain = MockState


class FrozenPlan(_FrozenObject, PlanRun):
    _plain = PlanRun


class FrozenSecret(Secret):
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        _refuse()

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return Secret(copy.deepcopy(self.value, memo))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self.value,))


def freeze(value: Any) -> Any:
    """The same data, read-only all the way down."""
    if isinstance(value, PlanRun):
        return FrozenPlan.of(value)
    if isinstance(value, ResourceRecord):
        return FrozenRecord.of(value)
    if isinstance(value, MockState):
        return FrozenState.of(value)
    if isinstance(value, StoredResource):  # a frozen dataclass already: freeze what it holds
        return StoredResource(freeze(value.inputs), value.id, freeze(value.outputs), value.generation)
    if isinstance(value, Secret):
        frozen = object.__new__(FrozenSecret)
        object.__setattr__(frozen, "value", freeze(value.value))
        return frozen
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def config_for(*overrides: str, stack: str = "dev") -> dict[str, str]:
    """The stack's config with `--set`-style overrides applied: what the program is given."""
    return dict(_config(stack, overrides))


@functools.cache
def _config(stack: str, overrides: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Reading and validating the stack files costs more than handing out a cached plan.
    return tuple(apply_overrides(load_stack_config(stack), overrides).items())


def cache_key(config: Mapping[str, str], stack: str = "dev") -> tuple[object, ...]:
    environment = tuple(os.environ.get(name) for name in ENV_INPUTS)
    return (stack, tuple(sorted(config.items())), environment, tls_mocks.pinned_clock())


def cached_plan(config: Mapping[str, str], stack: str = "dev") -> PlanRun:
    """The plan of exactly this config, run once per session, read-only."""
    key = cache_key(config, stack)
    if key not in _PLANS:
        _PLANS[key] = freeze(run_program(config, stack=stack))
        _out_of_the_collectors_way()
    return _PLANS[key]


def _out_of_the_collectors_way() -> None:
    """The cached plans live as long as the session: set aside (gc.freeze), they are no longer
    walked by each of the cyclic collector's full passes, which grew with every plan cached.
    Garbage is collected first, so none is set aside; whatever else is alive goes with them."""
    gc.collect()
    gc.freeze()


def shared_plan(*overrides: str, stack: str = "dev") -> PlanRun:
    return cached_plan(config_for(*overrides, stack=stack), stack)


def run_or_copy(config: Mapping[str, str], stack: str = "dev", state: MockState | None = None) -> PlanRun:
    """`run_program` as the commands of tools.plan call it, for their tests (conftest's
    `cached_commands`): a plan from scratch is a mutable copy of the session's plan of that config,
    equal to a fresh run (test_plancache.py); a plan over a carried state (diff's second) runs."""
    if state is not None:
        return run_program(config, stack=stack, state=state)
    return copy.deepcopy(cached_plan(config, stack))


def own_plan(*overrides: str, stack: str = "dev") -> PlanRun:
    """A mutable copy of the shared plan: to edit, or to carry its state into a second run."""
    return copy.deepcopy(shared_plan(*overrides, stack=stack))


def planned_configs() -> int:
    """How many distinct plans the session has run so far (for the cache's own tests)."""
    return len(_PLANS)
