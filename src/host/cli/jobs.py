"""`jobs ...`: enqueue, list, show, delete and requeue jobs in the job store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from application.jobs import (
    BulkAction,
    BulkResult,
    InvalidTransition,
    JobFilter,
    JobId,
    JobNotFound,
    JobSort,
    JobSummary,
    JobView,
)
from host.cli.options import (
    AsJson,
    HandlerFilter,
    QueueFilter,
    Since,
    States,
    TextFilter,
    Until,
    instant_option,
    job_filter,
    json_option,
)
from host.cli.output import json_line, print_error, render, row, table, when
from host.cli.runner import fail, run
from host.container import Container

app = typer.Typer(
    help="Enqueue, list, inspect, delete and requeue jobs in the job store.", no_args_is_help=True
)

JobIds = Annotated[
    list[UUID] | None,
    typer.Argument(
        metavar="ID", help="Ids of the jobs; leave out to act on the jobs the filter matches."
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Act on the matching jobs without asking.")]


@app.command()
def enqueue(
    handler: Annotated[
        str,
        typer.Argument(metavar="HANDLER", help="Registered handler name: HeartbeatJobs.beat."),
    ],
    args: Annotated[
        str, typer.Option("--args", metavar="JSON-ARRAY", help="Positional arguments, as JSON.")
    ] = "[]",
    kwargs: Annotated[
        str, typer.Option("--kwargs", metavar="JSON-OBJECT", help="Keyword arguments, as JSON.")
    ] = "{}",
    queue: Annotated[
        str | None, typer.Option(help="Queue to run on (default: the handler's queue).")
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option(min=0, metavar="SECONDS", help="Run after this many seconds."),
    ] = None,
    at: Annotated[
        dt.datetime | None,
        instant_option("Run at this instant, with a UTC offset: 2030-01-01T09:00:00+00:00."),
    ] = None,
    unique_key: Annotated[
        str | None,
        typer.Option(help="While a job with this key is active, print its id instead."),
    ] = None,
    after: Annotated[
        UUID | None,
        typer.Option(metavar="JOB_ID", help="Run once this job has succeeded (a continuation)."),
    ] = None,
) -> None:
    """Create a job of a registered handler; prints its id and state."""
    if delay is not None and at is not None:
        raise typer.BadParameter("give --delay or --at, not both", param_hint="'--delay'")
    positional = json_option(args, "'--args'", list)
    named = json_option(kwargs, "'--kwargs'", dict)

    async def body(container: Container) -> JobView:
        run_at = at
        if delay is not None:
            run_at = container.clock().now() + dt.timedelta(seconds=delay)
        job_id = await container.admin().enqueue(
            handler,
            positional,
            named,
            queue=queue,
            run_at=run_at,
            unique_key=unique_key,
            continue_after=None if after is None else JobId(after),
        )
        return await container.jobs().get(job_id)

    job = run(body)
    typer.echo(f"{job.id} {job.state}")


@app.command("list")
def list_jobs(
    states: States = None,
    queue: QueueFilter = None,
    handler: HandlerFilter = None,
    text: TextFilter = None,
    since: Since = None,
    until: Until = None,
    sort: Annotated[JobSort, typer.Option(help="Order of the list.")] = JobSort.NEWEST,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Jobs per page.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="Continue a list: the cursor the previous page printed.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first, a page at a time; prints the cursor of the next page."""
    where = job_filter(states, queue, handler, text, since, until)
    page = run(lambda c: c.admin().list_jobs(where, sort=sort, limit=limit, cursor=cursor))
    if as_json:
        for job in page.items:
            json_line(dataclasses.asdict(job))
    else:
        render(_jobs_table(page.items) if page.items else "no job matches")
    if page.next_cursor is not None:
        # On stderr with --json, so that stdout stays one job per line.
        typer.echo(f"next page: --cursor {page.next_cursor}", err=as_json)


def _jobs_table(jobs: Iterable[JobSummary]) -> Table:
    listed = table("id", "handler", "queue", "state", "created", "attempt")
    for job in jobs:
        row(listed, job.id, job.handler, job.queue, job.state, when(job.created_at), job.attempt)
    return listed


@app.command()
def show(
    job_id: Annotated[UUID, typer.Argument(metavar="ID", help="Id of the job.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Show a job: arguments, state, history, error and traceback, progress, logs, result."""
    job = run(lambda c: c.jobs().get(JobId(job_id)))
    if as_json:
        json_line(dataclasses.asdict(job))
        return
    render(_job_fields(job), _history_table(job))
    if job.error is not None:
        render(Text(f"error: {job.error.type}: {job.error.message}"), job.error.traceback)
    if job.logs:
        render(_logs_table(job))


def _job_fields(job: JobView) -> Table:
    grid = Table.grid(padding=(0, 2))
    fields: dict[str, object] = {
        "id": job.id,
        "handler": job.handler,
        "args": json.dumps(job.args),
        "kwargs": json.dumps(job.kwargs),
        "queue": job.queue,
        "state": job.state,
        "created": when(job.created_at),
        "run at": when(job.run_at),
        "attempt": f"{job.attempt} of {job.max_attempts}",
        "progress": f"{job.progress:.0%}",
        "result": json.dumps(job.result),
    }
    optional: dict[str, object] = {"unique key": job.unique_key, "after job": job.parent_id}
    optional |= {"batch": job.batch_id, "recurring": job.recurring_id}
    fields |= {name: value for name, value in optional.items() if value is not None}
    for name, value in fields.items():
        row(grid, name, value)
    return grid


def _history_table(job: JobView) -> Table:
    history = table("state", "at", "reason", title="history")
    for step in job.history:
        row(history, step.state, when(step.at), step.reason)
    return history


def _logs_table(job: JobView) -> Table:
    logs = table("at", "level", "message", title="logs")
    for line in job.logs:
        row(logs, when(line.at), line.level, line.message)
    return logs


def _change_command(action: BulkAction, summary: str) -> None:
    """Register `jobs delete` or `jobs requeue`: by id, or in bulk by filter."""

    def command(
        job_ids: JobIds = None,
        states: States = None,
        queue: QueueFilter = None,
        handler: HandlerFilter = None,
        text: TextFilter = None,
        since: Since = None,
        until: Until = None,
        yes: Yes = False,
    ) -> None:
        where = job_filter(states, queue, handler, text, since, until)
        _act(action, job_ids or [], where, yes=yes)

    epilog = "A filter with no ids acts on every matching job, after a confirmation."
    app.command(str(action), help=summary, epilog=epilog)(command)


_change_command(
    BulkAction.DELETE, "Delete jobs by id or by filter (processing ones are cancelled)."
)
_change_command(
    BulkAction.REQUEUE, "Enqueue jobs again now, by id or by filter (not processing ones)."
)


def _act(action: BulkAction, job_ids: list[UUID], where: JobFilter, *, yes: bool) -> None:
    if job_ids and where != JobFilter():
        fail("give job ids or a filter, not both", 2)
    if job_ids:
        failed = run(lambda c: _act_on_each(c, action, job_ids))
        raise typer.Exit(1 if failed else 0)
    if where == JobFilter():
        fail(
            f"refusing to {action} every job: give job ids or a filter "
            "(--state, --queue, --handler, --text, --since, --until)",
            1,
        )
    result = run(lambda c: _act_on_matching(c, action, where, yes=yes))
    typer.echo(f"matched {result.matched}, changed {result.changed}, skipped {result.skipped}")
    for skipped in result.skipped_jobs:
        typer.echo(f"skipped {skipped.job_id}: {skipped.reason}")


async def _act_on_each(container: Container, action: BulkAction, job_ids: list[UUID]) -> int:
    """Act on each job, reporting the ones that cannot be changed; returns how many."""
    jobs, failed = container.jobs(), 0
    change = jobs.delete if action is BulkAction.DELETE else jobs.requeue
    for job_id in job_ids:
        try:
            await change(JobId(job_id))
        except (JobNotFound, InvalidTransition) as exc:
            print_error(str(exc))
            failed += 1
        else:
            typer.echo(f"{action}d {job_id}")
    return failed


async def _act_on_matching(
    container: Container, action: BulkAction, where: JobFilter, *, yes: bool
) -> BulkResult:
    admin = container.admin()
    total = await admin.count(where)
    if total and not yes:
        typer.confirm(f"{action.capitalize()} {total} matching job(s)?", abort=True, err=True)
    columns = (TextColumn(f"{action}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(str(action), total=total)
        return await admin.apply(
            action, where, progress=lambda done: bar.update(task, completed=done)
        )
