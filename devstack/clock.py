"""The program's one clock. DEVSTACK_NOW (an ISO 8601 time) overrides it, so a test or a
reviewer can plan "as of" another day: secret_id rotation and certificate renewal follow it."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from devstack.errors import ConfigError

DAY_SECONDS = 86400


def now() -> datetime:
    override = os.environ.get("DEVSTACK_NOW")
    if not override:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(override)
    except ValueError:
        raise ConfigError(
            "env:DEVSTACK_NOW", f"must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got '{override}'"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def period(days: int, moment: datetime | None = None) -> int:
    """Which `days`-long period since the epoch `moment` falls in."""
    moment = moment or now()
    return int(moment.timestamp() // (days * DAY_SECONDS))
