"""R5: cron fire times, forwards and backwards, against a brute-force oracle over DST changes.

Fields are fixed values, wildcards, ranges (wrapping ones too), steps and lists. The oracle
shares no code with `infrastructure.jobs.cron` and never calls croniter: it reads the
generated fields as sets, scans the local wall-clock seconds of each matching day one by one,
and turns each matching wall time into instants with Cronos's rules, found by trying the zone's
offsets on UTC instants:
- a wall time that happens once fires then;
- one that happens twice (fall back) fires in its first copy, and in the second too when the
  expression is an interval one (a wildcard, range or step in the second, minute or hour field);
- one that never happens (spring forward) fires at the first instant after the gap;
- day of month and day of week, when both are restricted, must both match;
- a range that wraps around (`22-2/2`) counts on past the field's end (22, 0, 2).
Start instants are drawn within a day of the zones' offset changes of 2015-2030.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from application.jobs import Cron, InvalidSchedule
from infrastructure.jobs.cron import iter_fires, validate

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Amman",
    "Asia/Kolkata",
)
EXAMPLES = 500
FIRES_COMPARED = 12
HORIZON = dt.timedelta(days=2)
SECOND = dt.timedelta(seconds=1)
UTC = dt.UTC

# --- expressions as sets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]
    restricted: bool  # not `*` (matters for the day fields)
    interval: bool  # a wildcard, range or step (matters for second, minute and hour)


@dataclass(frozen=True)
class Expression:
    fields: tuple[Field, ...]  # second, minute, hour, day of month, month, day of week
    with_seconds: bool

    @property
    def text(self) -> str:
        shown = self.fields if self.with_seconds else self.fields[1:]
        return " ".join(f.text for f in shown)

    @property
    def interval(self) -> bool:
        return any(f.interval for f in self.fields[:3])

    def date_matches(self, day: dt.date) -> bool:
        _, _, _, dom, month, dow = self.fields
        if day.month not in month.values:
            return False
        # both must match; an unrestricted field holds every value
        return day.day in dom.values and (day.weekday() + 1) % 7 in dow.values


def field_strategy(first: int, last: int) -> st.SearchStrategy[Field]:
    value = st.integers(first, last)

    def fixed(v: int) -> Field:
        return Field(str(v), frozenset({v}), True, False)

    def span(pair: tuple[int, int]) -> Field:
        low, high = sorted(pair)
        return Field(f"{low}-{high}", frozenset(range(low, high + 1)), True, True)

    def step(args: tuple[int | None, int | None, int]) -> Field:
        low, high, size = args
        start = first if low is None else low
        end = last if high is None or low is None else max(low, high)
        base = "*" if low is None else (str(low) if high is None else f"{low}-{end}")
        return Field(f"{base}/{size}", frozenset(range(start, end + 1, size)), True, True)

    def listing(parts: list[Field]) -> Field:
        values = frozenset().union(*(p.values for p in parts))
        interval = any(p.interval for p in parts)
        return Field(",".join(p.text for p in parts), values, True, interval)

    def wrapped(args: tuple[int, int, int]) -> Field:
        """`high-low/size` with high > low: counting on from `high` past the field's end."""
        start, end, size = max(args[:2]), min(args[:2]), args[2]
        values, position, period = set(), start, last - first + 1
        while position <= last or position - period <= end:
            values.add(position if position <= last else position - period)
            position += size
        return Field(f"{start}-{end}/{size}", frozenset(values), True, True)

    single = st.one_of(value.map(fixed), st.tuples(value, value).map(span))
    return st.one_of(
        value.map(fixed),
        st.just(Field("*", frozenset(range(first, last + 1)), False, True)),
        st.tuples(value, value).map(span),
        st.tuples(st.none() | value, st.none() | value, st.integers(1, last - first)).map(step),
        st.lists(single, min_size=2, max_size=3).map(listing),
        st.tuples(value, value, st.integers(1, 4)).filter(lambda a: a[0] != a[1]).map(wrapped),
    )


def day_field(first: int, last: int) -> st.SearchStrategy[Field]:
    """Mostly `*`, so that most expressions fire near the offset changes."""
    star = Field("*", frozenset(range(first, last + 1)), False, True)
    return st.one_of(st.just(star), st.just(star), st.just(star), field_strategy(first, last))


def weekday_field() -> st.SearchStrategy[Field]:
    sunday = Field("7", frozenset({0}), True, False)  # Sunday's other number
    return st.one_of(day_field(0, 6), st.just(sunday))


_ZERO = Field("0", frozenset({0}), True, False)
_FIELDS = (
    field_strategy(0, 59),
    field_strategy(0, 59),
    field_strategy(0, 23),
    day_field(1, 31),
    day_field(1, 12),
    weekday_field(),
)


@st.composite
def expressions(draw: st.DrawFn) -> Expression:
    with_seconds = draw(st.booleans())
    fields = tuple(draw(strategy) for strategy in _FIELDS)
    return Expression(fields if with_seconds else (_ZERO, *fields[1:]), with_seconds)


# --- the zones' offset changes -----------------------------------------------------------------


@cache
def offset_changes(zone_name: str) -> tuple[dt.datetime, ...]:
    """UTC instants at which the zone's offset changes, 2015-2030 (hourly scan, then bisection)."""
    zone = ZoneInfo(zone_name)
    changes = []
    hour = dt.datetime(2015, 1, 1, tzinfo=UTC)
    previous = hour.astimezone(zone).utcoffset()
    while hour.year < 2031:
        following = hour + dt.timedelta(hours=1)
        offset = following.astimezone(zone).utcoffset()
        if offset != previous:
            low, high = hour, following
            while high - low > SECOND:
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle.astimezone(zone).utcoffset() == offset:
                    high = middle
                else:
                    low = middle
            changes.append(high)
            previous = offset
        hour = following
    return tuple(changes)


@st.composite
def starts(draw: st.DrawFn, zone_name: str) -> dt.datetime:
    changes = offset_changes(zone_name)
    if not changes:  # Asia/Kolkata: no change in these years
        base = dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(days=draw(st.integers(0, 2000)))
    else:
        base = draw(st.sampled_from(changes))
    near = st.sampled_from([-3600, -1800, -60, -1, 0, 1, 60, 1800, 3600])
    shift = draw(st.one_of(near, st.integers(-26 * 3600, 26 * 3600)))
    return base + dt.timedelta(seconds=shift)


# --- the oracle ------------------------------------------------------------------------------


class Oracle:
    """Cronos's fire times of one expression in one zone, found by brute force."""

    def __init__(self, expression: Expression, zone_name: str, around: dt.datetime) -> None:
        self.expression = expression
        self.zone = ZoneInfo(zone_name)
        sampled = {
            (around + dt.timedelta(hours=h)).astimezone(self.zone).utcoffset()
            for h in range(-96, 97)
        }
        self.offsets = sorted(o for o in sampled if o is not None)
        self.gap_ends: dict[dt.datetime, dt.datetime] = {}

    def instants_of(self, wall: dt.datetime) -> list[dt.datetime]:
        """The instants whose local wall-clock time is `wall`, earliest first."""
        found = []
        for offset in self.offsets:
            instant = (wall - offset).replace(tzinfo=UTC)
            if instant.astimezone(self.zone).utcoffset() == offset:
                found.append(instant)
        return sorted(found)

    def fires_of(self, wall: dt.datetime) -> list[dt.datetime]:
        instants = self.instants_of(wall)
        if len(instants) == 1:
            return instants
        if len(instants) == 2:
            return instants if self.expression.interval else instants[:1]
        return [self.gap_end(wall)]

    def gap_end(self, wall: dt.datetime) -> dt.datetime:
        """The first instant after the skipped wall time `wall`: scanned second by second."""
        if wall not in self.gap_ends:
            later = wall + SECOND
            while not self.instants_of(later):
                later += SECOND
            end = self.instants_of(later)[0]
            skipped = wall
            while not self.instants_of(skipped):
                self.gap_ends[skipped] = end
                skipped -= SECOND
            skipped = wall + SECOND
            while skipped < later:
                self.gap_ends[skipped] = end
                skipped += SECOND
        return self.gap_ends[wall]

    def walls(self, start: dt.datetime, *, backwards: bool) -> Iterator[dt.datetime]:
        """Every matching wall-clock second from `start` (a date's seconds scanned in order),
        over the horizon and a day more."""
        seconds, minutes, hours = (sorted(f.values) for f in self.expression.fields[:3])
        order = reversed if backwards else iter
        day = start.date()
        step = dt.timedelta(days=-1 if backwards else 1)
        for _ in range(HORIZON.days + 2):
            if self.expression.date_matches(day):
                for h, m, s in itertools.product(order(hours), order(minutes), order(seconds)):
                    wall = dt.datetime(day.year, day.month, day.day, h, m, s)
                    if (wall <= start) if backwards else (wall >= start):
                        yield wall
            day += step

    def after(self, t: dt.datetime, count: int, horizon: dt.datetime) -> list[dt.datetime]:
        low, high = self.offsets[0], self.offsets[-1]
        found: set[dt.datetime] = set()
        for wall in self.walls(naive(t + low) - SECOND, backwards=False):
            earliest = (wall - high).replace(tzinfo=UTC)
            kept = sorted(found)[:count]
            if earliest > horizon or (len(kept) == count and earliest > kept[-1]):
                break
            found.update(i for i in self.fires_of(wall) if t < i < horizon)
            found = set(sorted(found)[:count])
        return sorted(found)

    def before(self, t: dt.datetime, count: int, horizon: dt.datetime) -> list[dt.datetime]:
        low, high = self.offsets[0], self.offsets[-1]
        found: set[dt.datetime] = set()
        for wall in self.walls(naive(t + high) + SECOND, backwards=True):
            latest = (wall - low).replace(tzinfo=UTC)
            kept = sorted(found, reverse=True)[:count]
            if latest < horizon or (len(kept) == count and latest < kept[-1]):
                break
            found.update(i for i in self.fires_of(wall) if horizon < i < t)
            found = set(sorted(found, reverse=True)[:count])
        return sorted(found, reverse=True)


def naive(instant: dt.datetime) -> dt.datetime:
    return instant.replace(tzinfo=None, microsecond=0)


# --- the properties ----------------------------------------------------------------------------


def scheduled(expression: Expression, zone: str) -> Cron:
    """The expression as a Cron; one refused as never firing has no matching date in 400 years
    (the Gregorian cycle), and the example is dropped."""
    note(f"{expression.text!r} in {zone}")
    cron = Cron(expression.text, zone)
    try:
        validate(cron)
    except InvalidSchedule as refused:
        assert "never fires" in str(refused)
        days = (dt.date(2000, 1, 1) + dt.timedelta(days=n) for n in range(146_097))
        assert not any(expression.date_matches(day) for day in days)
        assume(False)
    return cron


_STARTS = {zone: starts(zone) for zone in ZONES}
CASES = st.sampled_from(ZONES).flatmap(
    lambda zone: st.tuples(st.just(zone), _STARTS[zone], expressions())
)
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_timings: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_time(summary_lines: list[str]) -> Iterator[None]:
    yield
    for name, seconds in _timings.items():
        summary_lines.append(f"cron oracle, {name}: {EXAMPLES} examples in {seconds:.1f} s")


@pytest.fixture
def timed(request: pytest.FixtureRequest) -> Iterator[None]:
    began = time.perf_counter()
    yield
    _timings[request.node.name] = time.perf_counter() - began


@pytest.mark.timeout(300)
@PROPERTY
@given(case=CASES)
def test_fire_times_forwards_match_the_oracle(
    timed: None, case: tuple[str, dt.datetime, Expression]
) -> None:
    zone, start, expression = case
    cron = scheduled(expression, zone)
    horizon = start + HORIZON

    fired = itertools.takewhile(lambda f: f < horizon, iter_fires(cron, start))

    expected = Oracle(expression, zone, start).after(start, FIRES_COMPARED, horizon)
    assert list(itertools.islice(fired, FIRES_COMPARED)) == expected


@pytest.mark.timeout(300)
@PROPERTY
@given(case=CASES)
def test_fire_times_backwards_match_the_oracle(
    timed: None, case: tuple[str, dt.datetime, Expression]
) -> None:
    zone, start, expression = case
    cron = scheduled(expression, zone)
    horizon = start - HORIZON

    fired = itertools.takewhile(lambda f: f > horizon, iter_fires(cron, start, backwards=True))

    expected = Oracle(expression, zone, start).before(start, FIRES_COMPARED, horizon)
    assert list(itertools.islice(fired, FIRES_COMPARED)) == expected
