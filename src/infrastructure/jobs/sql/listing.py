"""The operators' reads over many jobs: filtered, keyset-paged lists, counts, and outcomes per
minute. `SQLAlchemyJobStore` runs these on its connection.

Every filter value is a bind parameter. Two constructs compile differently per database: a
case-sensitive text match (`like_pattern`) and the whole minutes between two times.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from application.jobs import (
    JobFilter,
    JobId,
    JobPulse,
    JobSort,
    JobState,
    JobSummary,
    MinuteCount,
)
from infrastructure.jobs.engine.model import as_in_arguments_json
from infrastructure.jobs.engine.views import SORTS
from infrastructure.jobs.sql.tables import UTCDateTime

_SUMMARY_COLUMNS = (
    "id handler queue state created_at state_at run_at attempt progress error_type recurring_id"
).split()
LIKE_ESCAPE = "\\"
"""Escapes LIKE wildcards in the text filter, so that operators' text matches literally."""


def list_jobs(
    conn: sa.Connection,
    jobs: sa.Table,
    where: JobFilter,
    *,
    sort: JobSort,
    limit: int,
    after: tuple[dt.datetime, JobId] | None,
) -> list[JobSummary]:
    """Up to `limit` matching jobs in `sort` order, starting after `after` (sort key, id)."""
    name, descending = SORTS[sort]
    column = jobs.c[name]
    query = sa.select(*(jobs.c[c] for c in _SUMMARY_COLUMNS)).where(*matching(jobs, where))
    if after is not None:
        query = query.where(_beyond(column, jobs.c.id, after, descending=descending))
    order = (column.desc(), jobs.c.id.desc()) if descending else (column, jobs.c.id)
    query = query.order_by(*order).limit(limit)
    return [_summary(row) for row in conn.execute(query).mappings()]


def count_jobs(conn: sa.Connection, jobs: sa.Table, where: JobFilter) -> int:
    query = sa.select(sa.func.count()).select_from(jobs).where(*matching(jobs, where))
    return int(conn.execute(query).scalar_one())


def count_by_state(conn: sa.Connection, jobs: sa.Table) -> dict[JobState, int]:
    query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
    return {JobState(state): count for state, count in conn.execute(query).all()}


def finished_per_minute(
    conn: sa.Connection, history: sa.Table, *, since: dt.datetime, until: dt.datetime
) -> list[MinuteCount]:
    """Transitions to succeeded and failed in [since, until), per minute, oldest first."""
    # Grouped in a subquery by its column: SQL Server groups by neither an alias nor an
    # expression holding a parameter (nor does PostgreSQL, with server-side binding).
    outcomes = (
        sa.select(
            _MinutesSince(history.c.at, sa.literal(since, UTCDateTime())).label("minute"),
            history.c.state,
        )
        .where(
            history.c.state.in_([JobState.SUCCEEDED, JobState.FAILED]),
            history.c.at >= since,
            history.c.at < until,
        )
        .subquery()
    )
    query = sa.select(outcomes.c.minute, outcomes.c.state, sa.func.count()).group_by(
        outcomes.c.minute, outcomes.c.state
    )
    found = [(int(minute), JobState(state), n) for minute, state, n in conn.execute(query)]
    return _per_minute(since, found)


def queue_lengths(conn: sa.Connection, jobs: sa.Table) -> dict[str, tuple[int, dt.datetime]]:
    """Enqueued jobs per queue and the oldest one's `state_at` (the claim index covers it)."""
    query = (
        sa.select(jobs.c.queue, sa.func.count(), sa.func.min(jobs.c.state_at))
        .where(jobs.c.state == JobState.ENQUEUED)
        .group_by(jobs.c.queue)
    )
    return {queue: (count, oldest) for queue, count, oldest in conn.execute(query)}


def running_by_server(conn: sa.Connection, jobs: sa.Table) -> dict[str, int]:
    query = (
        sa.select(jobs.c.server_id, sa.func.count())
        .where(jobs.c.state == JobState.PROCESSING, jobs.c.server_id.is_not(None))
        .group_by(jobs.c.server_id)
    )
    return {str(server_id): int(count) for server_id, count in conn.execute(query)}


def enqueued_ahead(conn: sa.Connection, jobs: sa.Table, queue: str, before: dt.datetime) -> int:
    query = sa.select(sa.func.count()).where(
        jobs.c.state == JobState.ENQUEUED, jobs.c.queue == queue, jobs.c.state_at < before
    )
    return int(conn.execute(query).scalar_one())


def pulses(
    conn: sa.Connection, jobs: sa.Table, logs: sa.Table, job_ids: list[JobId]
) -> dict[JobId, JobPulse]:
    """Two statements, whatever the number of jobs."""
    if not job_ids:
        return {}
    lines: dict[UUID, int] = dict(
        conn.execute(
            sa.select(logs.c.job_id, sa.func.count())
            .where(logs.c.job_id.in_(job_ids))
            .group_by(logs.c.job_id)
        ).all()
    )
    query = sa.select(jobs.c.id, jobs.c.state, jobs.c.state_at, jobs.c.progress).where(
        jobs.c.id.in_(job_ids)
    )
    return {
        JobId(row.id): JobPulse(
            state=JobState(row.state),
            state_at=row.state_at,
            progress=row.progress,
            log_lines=lines.get(row.id, 0),
        )
        for row in conn.execute(query)
    }


def matching(jobs: sa.Table, where: JobFilter) -> list[sa.ColumnElement[Any]]:
    """The filter as conditions on `jobs`; every value is a bind parameter but the states.
    They come from a closed set and are written into the statement, so that a prepared
    statement's generic plan can still use the index of the one state asked for (the jobs
    indexes are partial, per state)."""
    c = jobs.c
    conditions: list[sa.ColumnElement[Any]] = []
    if where.states:
        states = [sa.literal(state.value, literal_execute=True) for state in sorted(where.states)]
        conditions.append(c.state.in_(states))
    equal: dict[str, object] = {
        "queue": where.queue,
        "handler": where.handler,
        "recurring_id": where.recurring_id,
        "parent_id": where.parent_id,
    }
    conditions += [c[name] == value for name, value in equal.items() if value is not None]
    if where.text:
        text = as_in_arguments_json(where.text)
        conditions.append(_HasText(c.payload, like_pattern(text), text))
    if where.created_from is not None:
        conditions.append(c.created_at >= where.created_from)
    if where.created_to is not None:
        conditions.append(c.created_at < where.created_to)
    if where.retries:
        scheduled = sa.literal(JobState.SCHEDULED.value, literal_execute=True)
        conditions += [c.state == scheduled, c.attempt > 0]
    return conditions


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` literally anywhere: its wildcards (`%`, `_`, and `[`,
    a wildcard on SQL Server) and the escape character are escaped."""
    escaped = "".join(LIKE_ESCAPE + char if char in "%_[" + LIKE_ESCAPE else char for char in text)
    return f"%{escaped}%"


def _summary(row: sa.RowMapping) -> JobSummary:
    return JobSummary(
        id=JobId(row["id"]),
        handler=row["handler"],
        queue=row["queue"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        state_at=row["state_at"],
        run_at=row["run_at"],
        attempt=row["attempt"],
        progress=row["progress"],
        error_type=row["error_type"],
        recurring_id=row["recurring_id"],
    )


def _beyond(
    column: sa.ColumnElement[Any],
    id_column: sa.ColumnElement[Any],
    after: tuple[dt.datetime, JobId],
    *,
    descending: bool,
) -> sa.ColumnElement[bool]:
    """Rows strictly after `after` (sort key, id) in the list's order. Spelled out rather
    than as a row-value comparison, which SQL Server lacks."""
    key, last_id = after
    past = operator.lt if descending else operator.gt
    return sa.or_(past(column, key), sa.and_(column == key, past(id_column, last_id)))


def _per_minute(
    since: dt.datetime, found: Iterable[tuple[int, JobState, int]]
) -> list[MinuteCount]:
    """MinuteCounts, oldest first, from (whole minutes since `since`, state, count)."""
    counts: defaultdict[int, dict[JobState, int]] = defaultdict(dict)
    for minute, state, count in found:
        counts[minute][state] = count
    return [
        MinuteCount(
            minute=since + dt.timedelta(minutes=minute),
            succeeded=by_state.get(JobState.SUCCEEDED, 0),
            failed=by_state.get(JobState.FAILED, 0),
        )
        for minute, by_state in sorted(counts.items())
    ]


class _HasText(FunctionElement[Any]):
    """The column holds the text literally, in the same case. Arguments: column, the text as
    a LIKE pattern (`like_pattern`), the text. Untyped on purpose: typed Boolean, SQLAlchemy
    would append `= 1` on databases without a boolean type."""

    inherit_cache = True
    name = "has_text"


@compiles(_HasText)
def _has_text(element: _HasText, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's spelling, and the default.
    column, pattern, _ = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} LIKE {pattern} ESCAPE {_escape_literal(compiler)}"


@compiles(_HasText, "mysql")
@compiles(_HasText, "mariadb")
def _has_text_mysql(element: _HasText, compiler: SQLCompiler, **kw: Any) -> str:
    # Compared as bytes: the default collations ignore case.
    column, pattern, _ = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST({column} AS BINARY) LIKE {pattern} ESCAPE {_escape_literal(compiler)}"


@compiles(_HasText, "mssql")
def _has_text_mssql(element: _HasText, compiler: SQLCompiler, **kw: Any) -> str:
    # A binary collation: the usual collations ignore case.
    column, pattern, _ = (compiler.process(c, **kw) for c in element.clauses)
    escape = _escape_literal(compiler)
    return f"{column} COLLATE Latin1_General_BIN2 LIKE {pattern} ESCAPE {escape}"


@compiles(_HasText, "sqlite")
def _has_text_sqlite(element: _HasText, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's LIKE ignores the case of ASCII letters; instr() compares exactly.
    column, _, text = (compiler.process(c, **kw) for c in element.clauses)
    return f"instr({column}, {text}) > 0"


def _escape_literal(compiler: SQLCompiler) -> str:
    """The escape character as a literal of the dialect (MySQL doubles the backslash)."""
    return compiler.render_literal_value(LIKE_ESCAPE, sa.String())


class _MinutesSince(FunctionElement[int]):
    """Whole minutes from a minute-aligned `since` (second argument) to a time column (first),
    computed by the database so that it can group millions of rows itself."""

    type = sa.Integer()
    inherit_cache = True
    name = "minutes_since"


@compiles(_MinutesSince)
def _minutes_since(element: _MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's spelling, and the default.
    at, since = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor(extract(epoch from ({at} - {since})) / 60) AS INTEGER)"


@compiles(_MinutesSince, "mysql")
@compiles(_MinutesSince, "mariadb")
def _minutes_since_mysql(element: _MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    at, since = (compiler.process(c, **kw) for c in element.clauses)
    return f"TIMESTAMPDIFF(MINUTE, {since}, {at})"


@compiles(_MinutesSince, "mssql")
def _minutes_since_mssql(element: _MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    # DATEDIFF counts minute boundaries crossed: whole minutes, as `since` is on one.
    at, since = (compiler.process(c, **kw) for c in element.clauses)
    return f"DATEDIFF(minute, {since}, {at})"


@compiles(_MinutesSince, "sqlite")
def _minutes_since_sqlite(element: _MinutesSince, compiler: SQLCompiler, **kw: Any) -> str:
    # Times are stored as text, "YYYY-MM-DD HH:MM:SS.ffffff". Cut to whole seconds first:
    # SQLite's date functions round to milliseconds (09:02:59.9999 would become 09:03), and
    # julianday()'s floating-point days can put an exact minute just below it.
    at, since = (
        f"strftime('%s', substr({compiler.process(c, **kw)}, 1, 19))" for c in element.clauses
    )
    return f"(CAST({at} AS INTEGER) - CAST({since} AS INTEGER)) / 60"
