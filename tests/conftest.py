"""A fresh program per test: each `plan(...)` call runs __main__.py anew under the mocks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tools.engine import PlanRun, run_program
from tools.stackconfig import apply_overrides, load_stack_config

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"

PlanFactory = Callable[..., PlanRun]


def make_plan(*overrides: str, stack: str = "dev") -> PlanRun:
    return run_program(apply_overrides(load_stack_config(stack), overrides), stack=stack)


@pytest.fixture
def plan() -> PlanFactory:
    return make_plan


def containers(run: PlanRun) -> dict[str, dict]:
    """Docker container name -> the inputs the provider would receive."""
    return {r.inputs["name"]: r.inputs for r in run.by_type(CONTAINER)}
