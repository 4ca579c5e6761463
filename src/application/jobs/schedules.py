"""Schedules of recurring jobs: cron expressions in a time zone, their helpers, and what a
recurring job does about ticks missed while no scheduler ran."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from zoneinfo import ZoneInfo

from application.jobs.errors import InvalidSchedule
from application.jobs.time_zones import iana_zone


class Misfire(StrEnum):
    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"
    SKIP = "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class MisfirePolicy:
    """What a recurring job does about ticks missed while no scheduler ran.

    A tick is missed when the scheduler sees it more than `grace` late.
    `run_once` enqueues one job for all missed ticks; `run_all` one per missed tick, the latest
    `limit` of them; `skip` none. Ticks within the grace window always run.
    """

    kind: Misfire = Misfire.RUN_ONCE
    limit: int = 100
    grace: dt.timedelta = dt.timedelta(seconds=60)

    @classmethod
    def run_once(cls) -> MisfirePolicy:
        return cls(kind=Misfire.RUN_ONCE)

    @classmethod
    def run_all(cls, limit: int = 100) -> MisfirePolicy:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return cls(kind=Misfire.RUN_ALL, limit=limit)

    @classmethod
    def skip(cls) -> MisfirePolicy:
        return cls(kind=Misfire.SKIP)


NEVER = "0 0 31 2 *"
"""Hangfire's `Cron.Never()`: a recurring job that only runs when triggered. The one expression
that never fires which is accepted."""


class Weekday(IntEnum):
    """Days as cron numbers them."""

    SUNDAY = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression (5 fields, or 6 with seconds first) evaluated in a time zone.

    The zone is an IANA name or a Windows id ("Turkey Standard Time"); it is kept and shown as
    the IANA name. The class methods build the common schedules, as Hangfire's `Cron` does:
    `Cron.daily(2, 30, timezone="Europe/Berlin")`.
    """

    expression: str
    timezone: str = "UTC"
    misfire: MisfirePolicy = field(default_factory=MisfirePolicy)

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise InvalidSchedule(
                f"cron expression {self.expression!r} has {len(fields)} fields; expected 5 or 6"
            )
        object.__setattr__(self, "expression", " ".join(fields))
        object.__setattr__(self, "timezone", iana_zone(self.timezone))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def minutely(cls, *, timezone: str = "UTC", misfire: MisfirePolicy | None = None) -> Cron:
        """Every minute, at second 0."""
        return cls._of("* * * * *", timezone, misfire)

    @classmethod
    def hourly(
        cls, minute: int = 0, *, timezone: str = "UTC", misfire: MisfirePolicy | None = None
    ) -> Cron:
        """Every hour at `minute`."""
        return cls._of(f"{_minute(minute)} * * * *", timezone, misfire)

    @classmethod
    def daily(
        cls,
        hour: int = 0,
        minute: int = 0,
        *,
        timezone: str = "UTC",
        misfire: MisfirePolicy | None = None,
    ) -> Cron:
        """Every day at `hour:minute`."""
        return cls._of(f"{_minute(minute)} {_hour(hour)} * * *", timezone, misfire)

    @classmethod
    def weekly(
        cls,
        day: Weekday = Weekday.MONDAY,
        hour: int = 0,
        minute: int = 0,
        *,
        timezone: str = "UTC",
        misfire: MisfirePolicy | None = None,
    ) -> Cron:
        """Every week on `day` at `hour:minute` (Monday by default, as in Hangfire)."""
        weekday = _within("day", day, 0, 6)
        return cls._of(f"{_minute(minute)} {_hour(hour)} * * {weekday}", timezone, misfire)

    @classmethod
    def monthly(
        cls,
        day: int = 1,
        hour: int = 0,
        minute: int = 0,
        *,
        timezone: str = "UTC",
        misfire: MisfirePolicy | None = None,
    ) -> Cron:
        """Every month on `day` at `hour:minute`; a month without that day is skipped."""
        dom = _within("day", day, 1, 31)
        return cls._of(f"{_minute(minute)} {_hour(hour)} {dom} * *", timezone, misfire)

    @classmethod
    def yearly(
        cls,
        month: int = 1,
        day: int = 1,
        hour: int = 0,
        minute: int = 0,
        *,
        timezone: str = "UTC",
        misfire: MisfirePolicy | None = None,
    ) -> Cron:
        """Every year on `month`/`day` at `hour:minute` (February 29 only in leap years)."""
        date = f"{_within('day', day, 1, 31)} {_within('month', month, 1, 12)}"
        return cls._of(f"{_minute(minute)} {_hour(hour)} {date} *", timezone, misfire)

    @classmethod
    def never(cls, *, timezone: str = "UTC", misfire: MisfirePolicy | None = None) -> Cron:
        """No fire time: the recurring job runs only when triggered."""
        return cls._of(NEVER, timezone, misfire)

    @classmethod
    def _of(cls, expression: str, timezone: str, misfire: MisfirePolicy | None) -> Cron:
        return cls(expression, timezone, misfire or MisfirePolicy())


def _within(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSchedule(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _minute(value: int) -> int:
    return _within("minute", value, 0, 59)


def _hour(value: int) -> int:
    return _within("hour", value, 0, 23)
