"""Cron evaluation in a time zone, with Hangfire's (Cronos') DST rules on top of croniter.

- Spring forward: a time inside the gap fires once, at the first valid instant after it
  (croniter already does this).
- Fall back: an expression with a fixed hour fires once, in the first of the two ambiguous
  hours; one whose hour field is a wildcard or step fires in both (croniter fires both always).
Six fields mean seconds first, as in Hangfire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from application.jobs import Cron, InvalidSchedule


def validate(cron: Cron) -> None:
    """Raises InvalidSchedule when croniter cannot parse the expression."""
    try:
        croniter(
            cron.expression,
            dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            second_at_beginning=_seconds_first(cron),
        )
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidSchedule(f"invalid cron expression {cron.expression!r}: {exc}") from None


def next_fire(cron: Cron, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after `after`, in UTC; None if it never fires again.

    Raises:
        InvalidSchedule: the expression cannot be parsed.
    """
    return next(iter_fires(cron, after), None)


def iter_fires(cron: Cron, start: dt.datetime, *, backwards: bool = False) -> Iterator[dt.datetime]:
    """Fire times in UTC strictly after `start` (or strictly before it, going backwards).

    Raises:
        InvalidSchedule: the expression cannot be parsed.
    """
    validate(cron)
    zone = cron.zone
    iterator = croniter(
        cron.expression, start.astimezone(zone), second_at_beginning=_seconds_first(cron)
    )
    step = iterator.get_prev if backwards else iterator.get_next
    fixed_hour = _has_fixed_hour(cron)
    while True:
        try:
            candidate: dt.datetime = step(dt.datetime)
        except CroniterBadDateError:
            return
        local = candidate.astimezone(dt.UTC).astimezone(zone)
        if fixed_hour and local.fold == 1 and _is_ambiguous(local):
            continue  # the repeated hour of a fall-back: this wall time already fired
        yield local.astimezone(dt.UTC)


def _seconds_first(cron: Cron) -> bool:
    return len(cron.expression.split()) == 6


def _has_fixed_hour(cron: Cron) -> bool:
    fields = cron.expression.split()
    hour = fields[2] if len(fields) == 6 else fields[1]
    return "*" not in hour


def _is_ambiguous(local: dt.datetime) -> bool:
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()
