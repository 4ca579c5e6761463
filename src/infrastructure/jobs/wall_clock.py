"""Wall-clock times in a time zone around its offset changes: which wall times a change skips
(a gap) or repeats (ambiguous), and the instant a wall time stands for."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import Enum
from zoneinfo import ZoneInfo


class Kind(Enum):
    NORMAL = "normal"
    GAP = "gap"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class Transition:
    """An offset change around a wall time: `at` in UTC, the wall times it skips or repeats."""

    kind: Kind
    at: dt.datetime
    before: dt.timedelta
    after: dt.timedelta

    @property
    def wall_start(self) -> dt.datetime:
        """First wall time skipped (gap) or repeated (ambiguous)."""
        return wall_time(self.at + min(self.before, self.after))

    @property
    def wall_end(self) -> dt.datetime:
        """First wall time after the skipped or repeated ones."""
        return wall_time(self.at + max(self.before, self.after))


def wall_time(instant: dt.datetime) -> dt.datetime:
    return instant.replace(tzinfo=None)


def transition(zone: ZoneInfo, wall: dt.datetime) -> Transition | None:
    """The offset change that makes `wall` skipped or repeated; None for an ordinary wall time."""
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    if first == second:
        return None
    # the change lies between the two readings of `wall`; find its exact second
    low = math.floor((wall_time(wall) - first).replace(tzinfo=dt.UTC).timestamp())
    high = math.ceil((wall_time(wall) - second).replace(tzinfo=dt.UTC).timestamp())
    low, high = min(low, high), max(low, high)
    while low < high:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == second:
            high = middle
        else:
            low = middle + 1
    kind = Kind.GAP if first < second else Kind.AMBIGUOUS
    return Transition(kind, dt.datetime.fromtimestamp(low, dt.UTC), first, second)


def instant(zone: ZoneInfo, wall: dt.datetime, *, fold: int = 0) -> dt.datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC)
