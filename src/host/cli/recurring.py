"""`recurring ...`: list, trigger, pause, resume and remove recurring (cron) jobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import typer

from application.jobs import RecurringView
from host.cli.options import AsJson
from host.cli.output import json_line, render, row, table, when
from host.cli.runner import fail, run
from host.container import Container

UPCOMING = 5
"""How many fire times `recurring list --upcoming` shows."""

app = typer.Typer(
    help="List, trigger, pause, resume and remove recurring (cron) jobs.", no_args_is_help=True
)

RecurringId = Annotated[str, typer.Argument(metavar="ID", help="Id of the recurring job.")]


@app.command("list")
def list_recurring(
    as_json: AsJson = False,
    upcoming: Annotated[
        bool, typer.Option(help=f"Add the next {UPCOMING} fire times (always in --json).")
    ] = False,
) -> None:
    """List the recurring jobs: schedule, handler, queue, paused, next and last run."""

    async def body(container: Container) -> list[tuple[RecurringView, list[dt.datetime]]]:
        admin = container.admin()
        every = await container.jobs().list_recurring()
        return [(view, admin.next_fire_times(view, UPCOMING)) for view in every]

    listed = run(body)
    if as_json:
        for view, fires in listed:
            json_line({**dataclasses.asdict(view), "upcoming": fires})
        return
    columns = ["id", "cron", "tz", "handler", "queue", "paused", "next run", "last run"]
    recurring = table(*columns, *(["upcoming"] if upcoming else []))
    for view, fires in listed:
        cells = [view.id, view.cron.expression, view.cron.timezone, view.handler, view.queue]
        cells += ["yes" if view.paused else "no", when(view.next_run_at), when(view.last_run_at)]
        row(recurring, *cells, *(["\n".join(map(when, fires)) or "-"] if upcoming else []))
    render(recurring if listed else "no recurring jobs")


@app.command()
def trigger(recurring_id: RecurringId) -> None:
    """Enqueue a job of the recurring job now, outside its schedule; prints the job's id."""
    typer.echo(run(lambda c: c.jobs().trigger_recurring(recurring_id)))


@app.command()
def pause(recurring_id: RecurringId) -> None:
    """Stop creating jobs on schedule until `resume`."""
    run(lambda c: c.jobs().pause_recurring(recurring_id))
    typer.echo(f"paused {recurring_id}")


@app.command()
def resume(recurring_id: RecurringId) -> None:
    """Schedule again from the next fire time after now (paused ticks are not caught up)."""
    run(lambda c: c.jobs().resume_recurring(recurring_id))
    typer.echo(f"resumed {recurring_id}")


@app.command()
def remove(recurring_id: RecurringId) -> None:
    """Remove a recurring job; the jobs it already created stay.

    A recurring job the code declares comes back at the next start of the service.
    """
    if not run(lambda c: c.jobs().remove_recurring(recurring_id)):
        fail(f"no recurring job {recurring_id!r}", 1)
    typer.echo(f"removed {recurring_id}")
