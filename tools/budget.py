"""The memory budget table: each container's limit and reservation as the plan gives them to
Docker, and the cache sizes its server derives from that limit (the tuning feature)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.catalog import SERVICES
from devstack.memory import format_mib
from devstack.settings import Settings
from tools.engine import PlanRun

CONTAINER = "docker:index/container:Container"
RULE = "limit = floor + (budget - sum of floors) x weight / sum of weights; reservation = floor"


@dataclass(frozen=True)
class BudgetRow:
    service: str
    floor_mb: int
    weight: int
    limit_mb: int
    reservation_mb: int
    caches: dict[str, str]


@dataclass(frozen=True)
class BudgetTable:
    budget_mb: int
    tuned: bool  # whether the servers use the derived sizes at this config (the tuning feature)
    rows: tuple[BudgetRow, ...]

    @property
    def total_mb(self) -> int:
        return sum(row.limit_mb for row in self.rows)


def budget_table(run: PlanRun, settings: Settings) -> BudgetTable:
    """Read from the plan's containers, so the table shows what Docker would receive."""
    planned = {r.inputs["name"]: r.inputs for r in run.by_type(CONTAINER)}
    rows = []
    for service in SERVICES:
        inputs = planned.get(service.container_name)
        if inputs is None:
            continue
        limit = int(inputs["memory"])
        caches = dict(service.tuning(service, limit).caches) if service.tuning else {}
        rows.append(
            BudgetRow(
                service.name,
                service.limits.floor_mb,
                service.limits.weight,
                limit,
                int(inputs["memoryReservation"]),
                caches,
            )
        )
    return BudgetTable(settings.memory_budget_mb, settings.features.tuning, tuple(rows))


def render_budget(table: BudgetTable) -> str:
    state = "in effect" if table.tuned else "derived, in effect once the tuning feature is on (phase 3)"
    lines = [
        f"budget {format_mib(table.budget_mb)}: containers' limits add up to {table.total_mb}MiB",
        f"rule: {RULE}",
        f"caches: {state}",
        "",
        f"{'service':<20} {'floor':>6} {'weight':>6} {'limit':>7} {'reserv.':>7}  caches",
    ]
    for row in table.rows:
        caches = ", ".join(f"{k}={v}" for k, v in row.caches.items())
        lines.append(
            f"{row.service:<20} {row.floor_mb:>6} {row.weight:>6} {row.limit_mb:>7} {row.reservation_mb:>7}  {caches}"
        )
    return "\n".join(lines)


def budget_json(table: BudgetTable) -> dict[str, Any]:
    return {
        "budget_mb": table.budget_mb,
        "total_mb": table.total_mb,
        "rule": RULE,
        "tuned": table.tuned,
        "services": [
            {
                "service": r.service,
                "floor_mb": r.floor_mb,
                "weight": r.weight,
                "limit_mb": r.limit_mb,
                "reservation_mb": r.reservation_mb,
                "caches": r.caches,
            }
            for r in table.rows
        ],
    }
