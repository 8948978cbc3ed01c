"""The memory budget: sizes as typed, the limit rule, the defaults per profile, and the plan."""

from __future__ import annotations

import pytest

from devstack.catalog import services_for
from devstack.errors import ConfigError
from devstack.memory import allocate, default_budget, format_mib, minimum_budget, parse_size
from devstack.model import Healthcheck, Limits, Profile, Service, Tier
from devstack.settings import Settings, load_settings
from tests.conftest import CONTAINER, PlanFactory, containers
from tests.plancache import own_plan
from tools.diff import diff_plans
from tools.plan import main as plan_main
from tools.plan import plan_for

# The two plans a test compares fall in one secret_id and certificate period, whenever the
# suite runs: on the wall clock a Thursday midnight between them would replace every container.
PINNED_NOW = "2026-11-26T12:00:00Z"


def settings_for(overrides: list[str]):
    return load(**dict(o.split("=", 1) for o in overrides))


def load(**values: object):
    return load_settings({f"devstack:{k}": v for k, v in values.items()}, stack="test")


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("8GiB", 8192),
        ("8g", 8192),
        ("8G", 8192),
        ("8gb", 8192),
        ("8192MB", 8192),
        ("8192m", 8192),
        ("8192MiB", 8192),
        (" 1.5g ", 1536),
        ("1048576k", 1024),
        ("1T", 1024 * 1024),
    ],
)
def test_sizes_in_the_forms_users_type(text: str, mib: int) -> None:
    assert parse_size("memoryBudget", text) == mib


@pytest.mark.parametrize("text", ["8", "8 gigs", "-1g", "g", "8.g", "8GiBs", "1.5.2g", "", "512k"])
def test_other_sizes_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_size("memoryBudget", text)
    assert str(caught.value).startswith("devstack:memoryBudget: must be")
    assert "8GiB, 8g" in str(caught.value) or "at least 1MiB" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_format_reads_back() -> None:
    for mib in (1, 1536, 2048, 8192, 3001):
        assert parse_size("k", format_mib(mib)) == mib


def _service(name: str, floor: int, weight: int) -> Service:
    check = Healthcheck(("CMD", "true"))
    return Service(name, "busybox", "1.37.0", Tier.APP, 30, (), check, Limits(1, floor, weight), frozenset())


def test_the_rule_floor_plus_a_weighted_share_of_the_rest() -> None:
    services = [_service("a", 100, 1), _service("b", 200, 3), _service("c", 50, 0)]
    memory = allocate("memoryBudget", services, 1350)  # 1000 beyond the floors of 350
    assert memory["a"].limit_mb == 100 + 1000 * 1 // 4
    assert memory["b"].limit_mb == 200 + 1000 * 3 // 4
    assert memory["c"].limit_mb == 50  # weight 0: its floor, whatever the budget
    assert [m.reservation_mb for m in memory.values()] == [100, 200, 50]


def test_rounding_never_exceeds_the_budget() -> None:
    services = [_service(str(i), 64, 1) for i in range(7)]
    for budget in range(448, 1200, 37):
        memory = allocate("memoryBudget", services, budget)
        assert sum(m.limit_mb for m in memory.values()) <= budget
        assert sum(m.limit_mb for m in memory.values()) > budget - len(services)


def _running(settings: Settings) -> tuple[Service, ...]:
    """The services these settings run: their profiles, switches and features."""
    return services_for(settings.profiles, settings.switches, settings.features.enabled())


def test_too_small_names_the_smallest_budget_that_works() -> None:
    chosen = _running(load(profiles="full,reference"))
    smallest = minimum_budget(chosen)
    with pytest.raises(ConfigError) as caught:
        load(profiles="full,reference", memoryBudget=f"{smallest - 1}MiB")
    assert str(caught.value) == (
        f"devstack:memoryBudget: {smallest - 1}MiB is below what the selected services need to start; "
        f"the smallest budget that works is {format_mib(smallest)}"
    )
    at_floor = load(profiles="full,reference", memoryBudget=format_mib(smallest))
    assert all(a.limit_mb == s.limits.floor_mb for s in chosen for a in [at_floor.memory[s.name]])


def test_bad_units_stop_settings_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^devstack:memoryBudget: must be a number and a unit"):
        load(memoryBudget="lots")


@pytest.mark.parametrize(
    ("profiles", "budget"),
    [("minimal", 2048), ("standard", 4096), ("full", 6144), ("full,reference", 8192), ("minimal,reference", 4096)],
)
def test_defaults_per_profile_fit(profiles: str, budget: int) -> None:
    settings = load(profiles=profiles)
    assert settings.memory_budget_mb == budget
    assert sum(a.limit_mb for a in settings.memory.values()) <= budget
    for service in _running(settings):
        allocation = settings.memory[service.name]
        assert allocation.limit_mb >= service.limits.floor_mb
        assert allocation.reservation_mb == service.limits.floor_mb


def test_every_profile_mix_fits_its_default() -> None:
    names = [p for p in Profile]
    for mask in range(1, 1 << len(names)):
        profiles = frozenset(p for i, p in enumerate(names) if mask >> i & 1)
        assert minimum_budget(services_for(profiles)) <= default_budget(profiles), profiles


def test_a_service_that_takes_weight_grows_with_the_budget() -> None:
    small, large = load(memoryBudget="4g"), load(memoryBudget="6g")
    grew = {name for name in small.memory if large.memory[name].limit_mb > small.memory[name].limit_mb}
    assert grew == {s.name for s in services_for(small.profiles) if s.limits.weight}


def test_the_plan_gives_docker_the_derived_limits(shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=full,reference")
    settings = load(profiles="full,reference")
    planned = containers(run)
    assert len(planned) == len(_running(settings))
    for service in _running(settings):
        inputs = planned[service.container_name]
        assert inputs["memory"] == settings.memory[service.name].limit_mb
        assert inputs["memoryReservation"] == service.limits.floor_mb
    assert sum(i["memory"] for i in planned.values()) <= 8192


def test_a_new_budget_updates_limits_in_place(cached_commands: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the tuning feature only the limits move, and Docker changes those in place."""
    monkeypatch.setenv("DEVSTACK_NOW", PINNED_NOW)
    base = ["profiles=full,reference", "phase=2"]
    before = plan_for("dev", [*base, "memoryBudget=8GiB"])
    after = plan_for("dev", [*base, "memoryBudget=10GiB"], state=before.state)
    changes = [c for c in diff_plans(before, after).changes if c.type == CONTAINER]
    assert len(changes) == len([s for s in services_for(settings_for(base).profiles) if s.limits.weight])
    for change in changes:
        assert (change.action, change.properties) == ("update", ("memory",)), change


def test_with_tuning_a_new_budget_restarts_the_tuned_servers(
    cached_commands: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From phase 3 the servers' settings follow their limits: those containers are replaced."""
    monkeypatch.setenv("DEVSTACK_NOW", PINNED_NOW)
    base = ["profiles=full,reference", "phase=3"]
    before = own_plan(*base, "memoryBudget=8GiB")
    after = plan_for("dev", [*base, "memoryBudget=10GiB"], state=before.state)
    replaced = {c.name for c in diff_plans(before, after).of("replace") if c.type == CONTAINER}
    assert replaced == {s.name for s in services_for(settings_for(base).profiles) if s.tuning is not None}


def test_budget_command_prints_the_table(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert plan_main(["budget", "--set", "profiles=full,reference"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("budget 8GiB: containers' limits add up to ")
    assert "rule: limit = floor + (budget - sum of floors) x weight / sum of weights" in out
    for cache in ("shared_buffers=", "innodb-buffer-pool-size=", "wiredTigerCacheSizeGB=", "maxmemory="):
        assert cache in out
    total = int(out.split("add up to ")[1].split("MiB")[0])
    assert total <= 8192


def test_budget_command_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main(["budget", "--set", "profiles=minimal", "--set", "memoryBudget=512m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the smallest budget that works is " in err
