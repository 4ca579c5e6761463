"""Parsing the commands' options: instants, JSON values, and the job filter of `jobs list`,
`jobs delete` and `jobs requeue`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

import typer

from application.jobs import JobFilter, JobState

T = TypeVar("T")


def aware_datetime(value: str) -> dt.datetime:
    """An ISO 8601 instant with a UTC offset (`Z` included)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no time zone; add a UTC offset, e.g. {value}+00:00"
        )
    return parsed.astimezone(dt.UTC)


def instant_option(help_text: str) -> Any:
    """An option read by `aware_datetime`."""
    return typer.Option(parser=aware_datetime, metavar="ISO-DATETIME", help=help_text)


def json_option(value: str, option: str, kind: type[T]) -> T:
    """`value` parsed as JSON of `kind` (`list` or `dict`); a bad one is a bad `option`."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(parsed, kind):
        expected = "array" if kind is list else "object"
        raise typer.BadParameter(f"must be a JSON {expected}", param_hint=option)
    return parsed


def job_filter(
    states: Sequence[JobState] | None,
    queue: str | None,
    handler: str | None,
    text: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> JobFilter:
    return JobFilter(
        states=frozenset(states or ()),
        queue=queue,
        handler=handler,
        text=text,
        created_from=since,
        created_to=until,
    )


# The filter options of `jobs list`, `jobs delete` and `jobs requeue`.
States = Annotated[
    list[JobState] | None,
    typer.Option("--state", help="Only jobs in this state; repeat the option for several."),
]
QueueFilter = Annotated[str | None, typer.Option("--queue", help="Only jobs of this queue.")]
HandlerFilter = Annotated[
    str | None,
    typer.Option("--handler", help="Only jobs of this handler, e.g. HeartbeatJobs.beat."),
]
TextFilter = Annotated[
    str | None,
    typer.Option("--text", help="Only jobs whose arguments, as stored JSON, contain this text."),
]
Since = Annotated[
    dt.datetime | None,
    instant_option("Only jobs created at or after this instant (with a UTC offset)."),
]
Until = Annotated[
    dt.datetime | None,
    instant_option("Only jobs created before this instant (with a UTC offset)."),
]

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]
