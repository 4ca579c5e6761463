"""Time as the domain sees it: an injected clock and the rule that datetimes are aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from domain.errors import InvalidValue


class Clock(Protocol):
    """Where handlers and use cases read the current time (a fake one in tests)."""

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware UTC."""


def require_aware(name: str, value: dt.datetime | None) -> None:
    """Raises ValueError when `value` is a naive datetime; None passes."""
    if value is not None and value.utcoffset() is None:
        raise InvalidValue(f"{name} must be timezone-aware, got {value.isoformat()}")
