"""The program's one clock. DEVSTACK_NOW (an ISO 8601 time) overrides it, so a test or a
reviewer can plan "as of" another day: secret_id rotation and certificate renewal follow it."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from devstack.errors import ConfigError

DAY_SECONDS = 86400
# The certificates' validity must fit X.509 dates (1950-9999): the root CA runs ten years from now.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9979, 12, 31, tzinfo=UTC)


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
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment <= LATEST:
        raise ConfigError(
            "env:DEVSTACK_NOW",
            f"must lie between {EARLIEST.date()} and {LATEST.date()} (certificates run ten years from it), "
            f"got '{override}'",
        )
    return moment


def period(days: int, moment: datetime | None = None) -> int:
    """Which `days`-long period since the epoch `moment` falls in."""
    moment = moment or now()
    return int(moment.timestamp() // (days * DAY_SECONDS))
