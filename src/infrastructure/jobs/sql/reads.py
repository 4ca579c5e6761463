"""The store's reads of one job, a batch, recurring jobs and servers, on a connection."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from application.jobs import (
    BatchId,
    BatchView,
    JobId,
    JobState,
    JobView,
    LogLine,
    Transition,
)
from infrastructure.jobs.engine.model import RecurringJob, ServerInfo, UnloadableRecurring
from infrastructure.jobs.engine.views import job_view
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.tables import JobTables


def get(conn: sa.Connection, tables: JobTables, job_id: JobId) -> JobView | None:
    jobs, history, logs = tables.jobs, tables.history, tables.logs
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        return None
    transitions = conn.execute(
        sa.select(history).where(history.c.job_id == job_id).order_by(history.c.id)
    ).mappings()
    lines = conn.execute(
        sa.select(logs).where(logs.c.job_id == job_id).order_by(logs.c.id)
    ).mappings()
    return job_view(
        rows.job_of(row),
        history=(
            Transition(
                state=JobState(h["state"]),
                at=h["at"],
                reason=h["reason"],
                data=json.loads(h["data"]) if h["data"] else {},
            )
            for h in transitions
        ),
        logs=(LogLine(at=x["at"], level=x["level"], message=x["message"]) for x in lines),
        error=rows.error_of(row),
        progress=row["progress"],
        result=json.loads(row["result"]) if row["result"] is not None else None,
    )


def get_batch(conn: sa.Connection, tables: JobTables, batch_id: BatchId) -> BatchView | None:
    batches = tables.batches
    batch = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).mappings().first()
    if batch is None:
        return None
    counts = dict.fromkeys(JobState, 0)
    counts.update(batch_counts(conn, tables.jobs, batch_id, batch["continuation_id"]))
    return BatchView(
        id=batch_id,
        total=batch["total"],
        counts=counts,
        continuation_id=batch["continuation_id"],
    )


def list_batches(conn: sa.Connection, tables: JobTables, limit: int) -> list[BatchView]:
    """The newest `limit` batches, newest first, in one transaction."""
    table = tables.batches
    query = sa.select(table.c.id).order_by(table.c.created_at.desc(), table.c.id).limit(limit)
    found = (get_batch(conn, tables, BatchId(batch_id)) for batch_id in conn.scalars(query))
    return [view for view in found if view is not None]


def batch_counts(
    conn: sa.Connection, jobs: sa.Table, batch_id: BatchId, continuation_id: JobId | None
) -> dict[JobState, int]:
    """How many of the batch's jobs are in each state, its continuation left out."""
    query = (
        sa.select(jobs.c.state, sa.func.count())
        .where(jobs.c.batch_id == batch_id)
        .group_by(jobs.c.state)
    )
    if continuation_id is not None:
        query = query.where(jobs.c.id != continuation_id)
    return {JobState(state): count for state, count in conn.execute(query).all()}


def get_recurring(conn: sa.Connection, tables: JobTables, recurring_id: str) -> RecurringJob | None:
    table = tables.recurring
    found = conn.execute(sa.select(table).where(table.c.id == recurring_id)).mappings().first()
    return None if found is None else rows.recurring_of(found)


def list_recurring(
    conn: sa.Connection, tables: JobTables, *, after: str | None, limit: int | None
) -> list[RecurringJob]:
    table = tables.recurring
    query = sa.select(table).order_by(table.c.id).limit(limit)
    if after is not None:
        query = query.where(table.c.id > after)
    return [rows.recurring_of(row) for row in conn.execute(query).mappings()]


def due_recurring(
    conn: sa.Connection, tables: JobTables, now: dt.datetime, limit: int
) -> list[RecurringJob | UnloadableRecurring]:
    table = tables.recurring
    query = (
        sa.select(table)
        .where(table.c.paused == sa.false(), table.c.next_run_at <= now)
        .order_by(table.c.next_run_at)
        .limit(limit)
    )
    return [rows.recurring_or_unloadable(row) for row in conn.execute(query).mappings()]


def list_servers(conn: sa.Connection, tables: JobTables) -> list[ServerInfo]:
    query = sa.select(tables.servers).order_by(tables.servers.c.id)
    return [
        ServerInfo(
            id=row["id"],
            queues=tuple(json.loads(row["queues"])),
            concurrency=row["concurrency"],
            started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"],
        )
        for row in conn.execute(query).mappings()
    ]
