"""Cron evaluation in a time zone with the meaning Hangfire users know (Cronos, its cron library).

croniter finds the matching local wall-clock times; this module maps them to instants with
Cronos's rules (docs/cron.md lists every remaining difference):

- Spring forward: a wall time inside the gap fires once, at the first valid instant after it.
- Fall back: a wall time in the repeated interval fires in its first copy; an *interval*
  expression (a wildcard, range or step in the second, minute or hour field) also fires in the
  second copy.
- Day of month and day of week, when both are set, must both match.
- A range that wraps around (`23-3/2`, `sat-tue/2`) steps across the wrap; `nW` does not fire in
  a month without an n-th day; `nL` in the day-of-week field is the last such weekday.
Six fields mean seconds first, as in Hangfire. Expressions that never fire (except Hangfire's
`Cron.Never()`, `0 0 31 2 *`) and Jenkins-style `H`/`R` fields are refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from application.jobs import NEVER, Cron, InvalidSchedule
from infrastructure.jobs import wall_clock

_SECOND = dt.timedelta(seconds=1)
# Cronos's field bounds, by position in a six-field expression (the day of week ends at 6 when a
# range wraps: Sunday is both 0 and 7).
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {},
    {m: n for n, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    {d: n for n, d in enumerate("sun mon tue wed thu fri sat".split())},
)
_RANGE = re.compile(r"^(\w+)-(\w+)(?:/(\d+))?$")
_JENKINS = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_NEAREST_WEEKDAY = re.compile(r"^(\d+)w$", re.IGNORECASE)
_LAST_WEEKDAY = re.compile(r"^([0-7a-z]+)l$", re.IGNORECASE)
_UNSUPPORTED_LAST = re.compile(r"^l(-\d+|w)$", re.IGNORECASE)
# The Gregorian calendar repeats every 400 years: an expression with no date in 400 years has none.
_CALENDAR_CYCLE_YEARS = 400
_SEARCH_YEARS = 50
_MONTHS_TO_TRY = 48


@dataclass(frozen=True, slots=True)
class _Schedule:
    """An expression as croniter reads it, with what Cronos's rules need on top."""

    expression: str
    seconds_first: bool
    interval: bool
    nearest_weekday_day: int | None
    never: bool = False

    def walls(self, start: dt.datetime, *, years: int = _SEARCH_YEARS) -> croniter:
        return croniter(
            self.expression,
            start,
            second_at_beginning=self.seconds_first,
            day_or=False,
            max_years_between_matches=years,
        )

    def exists_in_month(self, wall: dt.datetime) -> bool:
        """`nW` only fires in months that have an n-th day (croniter moves it to the last)."""
        if self.nearest_weekday_day is None:
            return True
        following = (wall.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        return self.nearest_weekday_day <= (following - dt.timedelta(days=1)).day


def validate(cron: Cron) -> None:
    """Raises InvalidSchedule when the expression is malformed, unsupported or never fires."""
    _compile(cron.expression)


def next_fire(cron: Cron, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after `after`, in UTC; None if it never fires again.

    Raises:
        InvalidSchedule: the expression is malformed, unsupported or never fires.
    """
    return next(iter_fires(cron, after), None)


def iter_fires(cron: Cron, start: dt.datetime, *, backwards: bool = False) -> Iterator[dt.datetime]:
    """Fire times in UTC strictly after `start` (or strictly before it, going backwards).

    Raises:
        InvalidSchedule: the expression is malformed, unsupported or never fires.
    """
    schedule = _compile(cron.expression)
    if schedule.never:
        return
    cursor = _WallCursor(schedule)
    step = _previous if backwards else _next
    current = start.astimezone(dt.UTC)
    while True:
        try:
            found = step(cursor, cron.zone, schedule.interval, current)
        except OverflowError:  # the local time of an instant near year 1 or 9999
            return
        if found is None:
            return
        yield found
        current = found


# --- compiling ------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _compile(expression: str) -> _Schedule:
    fields = expression.split()
    seconds_first = len(fields) == 6
    six = fields if seconds_first else ["0", *fields]
    rewritten = [_rewrite_field(position, field) for position, field in enumerate(six)]
    nearest = _NEAREST_WEEKDAY.match(six[3])
    schedule = _Schedule(
        expression=" ".join(rewritten if seconds_first else rewritten[1:]),
        seconds_first=seconds_first,
        interval=any(_is_interval(field) for field in six[:3]),
        nearest_weekday_day=int(nearest.group(1)) if nearest else None,
    )
    if _ever_fires(expression, schedule):
        return schedule
    if expression == NEVER:
        return dataclasses.replace(schedule, never=True)
    raise InvalidSchedule(
        f"cron expression {expression!r} never fires (for a job that only runs when "
        f"triggered, use Cron.never(): {NEVER!r})"
    )


def _ever_fires(expression: str, schedule: _Schedule) -> bool:
    try:
        walls = schedule.walls(dt.datetime(2000, 1, 1), years=_CALENDAR_CYCLE_YEARS)
        # 2000 is a leap year, so an `nW` that exists in some month does within 4 years
        candidates = (walls.get_next(dt.datetime) for _ in range(_MONTHS_TO_TRY))
        return any(schedule.exists_in_month(wall) for wall in candidates)
    except CroniterBadDateError:  # a subclass of the next: check it first
        return False
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidSchedule(f"invalid cron expression {expression!r}: {exc}") from None


def _rewrite_field(position: int, field: str) -> str:
    """Cronos's meaning of the few forms croniter reads otherwise; refuses what neither has."""
    elements = field.split(",")
    for element in elements:
        if _JENKINS.match(element):
            raise InvalidSchedule(
                f"cron field {field!r}: Jenkins-style H and R (hashed or random) are not supported"
            )
        if position == 3 and _UNSUPPORTED_LAST.match(element):
            raise InvalidSchedule(f"cron field {field!r}: L-n and LW are not supported")
    if position == 5 and len(elements) == 1 and (last := _LAST_WEEKDAY.match(field)):
        return f"L{last.group(1)}"  # croniter spells Cronos's `5L` (last Friday) `L5`
    return ",".join(_unwrap_range(position, element) for element in elements)


def _unwrap_range(position: int, element: str) -> str:
    """A wrapping range (`23-3/2`) as the list Cronos means: it steps on across the wrap; a
    one-value range as that value."""
    found = _RANGE.match(element)
    if found is None:
        return element
    low, high = (_value(position, found.group(n)) for n in (1, 2))
    if low is not None and low == high:
        return str(low)  # croniter reads `5-5` as the whole field
    if low is None or high is None or low < high:
        return element
    step = int(found.group(3) or 1)
    if step < 1:
        return element  # croniter refuses it with its own message
    first, last = _BOUNDS[position]
    values = list(range(low, last + 1, step))
    # Cronos: the first value after the wrap continues the step from the last before it.
    restart = first + step - int(math.fmod(last - low, step)) - 1
    values += range(restart, high + 1, step)
    return ",".join(str(v) for v in values)


def _value(position: int, text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _NAMES[position].get(text.lower())


def _is_interval(field: str) -> bool:
    """Cronos's Interval flag: a wildcard, range or step in a second, minute or hour field."""
    return any(mark in field for mark in "*?-/")


# --- fire times -----------------------------------------------------------------------------


class _WallCursor:
    """The matching wall-clock times, reusing croniter's position while the caller walks on."""

    def __init__(self, schedule: _Schedule) -> None:
        self._schedule = schedule
        self._iterator: croniter | None = None
        self._position: tuple[dt.datetime, bool] | None = None

    def after(self, wall: dt.datetime) -> dt.datetime | None:
        """The first matching wall time strictly after `wall`."""
        return self._step(wall, backwards=False)

    def at_or_after(self, wall: dt.datetime) -> dt.datetime | None:
        return self._step(wall - _SECOND, backwards=False)

    def before(self, wall: dt.datetime) -> dt.datetime | None:
        """The last matching wall time strictly before `wall`."""
        return self._step(wall, backwards=True)

    def _step(self, wall: dt.datetime, *, backwards: bool) -> dt.datetime | None:
        if self._iterator is None or self._position != (wall, backwards):
            self._iterator = self._schedule.walls(wall)
        move: Callable[[type[dt.datetime]], dt.datetime]
        move = self._iterator.get_prev if backwards else self._iterator.get_next
        while True:
            try:
                found = move(dt.datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                self._iterator = None  # past year 1 or 9999: no more fire times
                return None
            if self._schedule.exists_in_month(found):
                self._position = (found, backwards)
                return found


def _resolve(zone: ZoneInfo, wall: dt.datetime) -> dt.datetime:
    """The instant a matching wall time found outside a repeated interval fires at."""
    change = wall_clock.transition(zone, wall)
    if change is not None and change.kind is wall_clock.Kind.GAP:
        return change.at  # the first valid instant after the gap
    return wall_clock.instant(zone, wall)  # an ambiguous wall time fires in its first copy


def _next(
    cursor: _WallCursor, zone: ZoneInfo, interval: bool, after: dt.datetime
) -> dt.datetime | None:
    """Cronos's next occurrence strictly after `after`."""
    local = after.astimezone(zone)
    wall = wall_clock.wall_time(local)
    change = wall_clock.transition(zone, wall)
    if change is None or change.kind is not wall_clock.Kind.AMBIGUOUS:
        found = cursor.after(wall)
        return None if found is None else _resolve(zone, found)
    end = change.wall_end
    if local.fold == 0:
        found = cursor.after(wall)
        if found is not None and found < end:
            return wall_clock.instant(zone, found, fold=0)
        if interval:
            found = cursor.at_or_after(change.wall_start)
            if found is not None and found < end:
                return wall_clock.instant(zone, found, fold=1)
    elif interval:
        found = cursor.after(wall)
        if found is not None and found < end:
            return wall_clock.instant(zone, found, fold=1)
    found = cursor.at_or_after(end)
    return None if found is None else _resolve(zone, found)


def _previous(
    cursor: _WallCursor, zone: ZoneInfo, interval: bool, before: dt.datetime
) -> dt.datetime | None:
    """The latest fire time strictly before `before`: `_next` walked backwards."""
    local = before.astimezone(zone)
    wall = wall_clock.wall_time(local)
    change = wall_clock.transition(zone, wall)
    if change is None or change.kind is not wall_clock.Kind.AMBIGUOUS:
        return _previous_outside(cursor, zone, interval, wall, before)
    start = change.wall_start
    if local.fold == 1:
        if interval:
            found = cursor.before(wall)
            if found is not None and found >= start:
                return wall_clock.instant(zone, found, fold=1)
        found = cursor.before(change.wall_end)
    else:
        found = cursor.before(wall)
    if found is not None and found >= start:
        return wall_clock.instant(zone, found, fold=0)
    return _previous_outside(cursor, zone, interval, start, before)


def _previous_outside(
    cursor: _WallCursor, zone: ZoneInfo, interval: bool, wall: dt.datetime, before: dt.datetime
) -> dt.datetime | None:
    """The latest fire time strictly before `before` whose wall time is before `wall`."""
    found = cursor.before(wall)
    while found is not None:
        change = wall_clock.transition(zone, found)
        if change is None:
            return wall_clock.instant(zone, found)
        if change.kind is wall_clock.Kind.AMBIGUOUS:
            return wall_clock.instant(zone, found, fold=1 if interval else 0)
        if change.at < before:
            return change.at
        found = cursor.before(change.wall_start)  # this gap already fired at `before`
    return None
