"""The clocks behind the domain's `Clock` port: the system's, and a fake one for tests. The
engine's loops read it once per round and pass `now` down."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from domain.clock import Clock

__all__ = ["Clock", "FakeClock", "SystemClock"]


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FakeClock:
    """A clock that only moves when told to; tests drive the engine with it."""

    current: dt.datetime

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, by: dt.timedelta) -> None:
        self.current += by

    def set(self, to: dt.datetime) -> None:
        self.current = to
