"""What the templates show, computed in Python: times, durations, pretty JSON, cron in words,
a job's timeline and its failed attempts, the per-minute graph as SVG geometry."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

from cron_descriptor import FormatException, get_description

from application.jobs import JobView, JSONValue, MinuteCount, Transition
from infrastructure.jobs.engine.explanations import instant, relative

GRAPH_WIDTH, GRAPH_HEIGHT = 600, 120


def when(at: dt.datetime | None) -> str:
    return "" if at is None else instant(at)


def since(at: dt.datetime | None, now: dt.datetime) -> str:
    return "" if at is None else relative(at - now)


def pretty_json(value: JSONValue) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def cron_words(expression: str) -> str:
    """The expression in English; cron_descriptor reads 6 fields as seconds first, as we do."""
    try:
        return str(get_description(expression))
    except (FormatException, ValueError, IndexError):
        return expression


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One state of a job's timeline and how long the job spent in it (to now, if current)."""

    transition: Transition
    spent: str
    current: bool


def timeline(job: JobView, now: dt.datetime) -> list[Step]:
    steps = []
    history = job.history
    for i, transition in enumerate(history):
        last = i == len(history) - 1
        end = now if last else history[i + 1].at
        spent = "" if last and job.state.is_final else relative(end - transition.at)
        steps.append(Step(transition=transition, spent=spent.removeprefix("in "), current=last))
    return steps


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A failed attempt: when, the exception, and the traceback when the store kept it."""

    at: dt.datetime
    attempt: int
    exception: str
    message: str
    traceback: str


def failures(job: JobView) -> list[Failure]:
    """Every failed attempt, oldest first, from the history (which records each one's
    exception and traceback; rows written before it kept tracebacks have the job's last)."""
    found = []
    attempt = 0
    for transition in job.history:
        data = transition.data
        if isinstance(data.get("attempt"), int):
            attempt = int(str(data["attempt"]))
        if "exception_type" in data:
            found.append(
                Failure(
                    at=transition.at,
                    attempt=attempt,
                    exception=str(data["exception_type"]),
                    message=str(data.get("message", "")),
                    traceback=str(data.get("traceback", "")),
                )
            )
    if job.error is not None and found and not found[-1].traceback:
        found[-1] = replace(found[-1], traceback=job.error.traceback)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    x: float
    width: float
    succeeded: float
    failed: float
    """Heights in pixels; the failed bar sits on top of the succeeded one."""
    label: str


def graph(minutes: list[MinuteCount]) -> list[Bar]:
    """Stacked bars of succeeded and failed jobs, one per minute, scaled to the busiest."""
    if not minutes:
        return []
    peak = max(max(m.succeeded + m.failed for m in minutes), 1)
    width = GRAPH_WIDTH / len(minutes)
    scale = (GRAPH_HEIGHT - 4) / peak
    return [
        Bar(
            x=round(i * width, 2),
            width=round(max(width - 1, 1), 2),
            succeeded=round(m.succeeded * scale, 2),
            failed=round(m.failed * scale, 2),
            label=f"{m.minute:%H:%M}: {m.succeeded} succeeded, {m.failed} failed",
        )
        for i, m in enumerate(minutes)
    ]
