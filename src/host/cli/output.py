"""Printing for the commands: rich tables on stdout, JSON lines, and one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from uuid import UUID

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from application.jobs import JSONValue


def print_error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def json_line(record: dict[str, object]) -> None:
    typer.echo(json.dumps(record, default=_json_default))


def _json_default(value: object) -> JSONValue:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z"


def table(*columns: str, title: str | None = None) -> Table:
    made = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, highlight=False)
    for number, column in enumerate(columns):
        # Fold rather than cut long values; the first column (an id) stays whole.
        made.add_column(column, overflow="fold", no_wrap=number == 0, min_width=len(column))
    return made


def row(into: Table, *cells: object) -> None:
    # Text, not str: a value such as `[1, 2]` must not be read as rich markup.
    into.add_row(*(Text(str(cell)) for cell in cells))


def render(*renderables: Table | Text | str) -> None:
    console = Console(highlight=False)
    for renderable in renderables:
        console.print(renderable, markup=False)
