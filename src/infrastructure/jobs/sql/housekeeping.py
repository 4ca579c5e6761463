"""The store's plain writes, with no lifecycle rule: servers, retention, and a recurring job's
removal and pause."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from application.jobs import JobState
from infrastructure.jobs.engine.model import ServerInfo
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.tables import JobTables


def heartbeat(conn: sa.Connection, tables: JobTables, server: ServerInfo) -> None:
    table = tables.servers
    values = {
        "queues": rows.dump(list(server.queues)),
        "concurrency": server.concurrency,
        "started_at": server.started_at,
        "heartbeat_at": server.heartbeat_at,
    }
    updated = conn.execute(table.update().where(table.c.id == server.id).values(values))
    if not updated.rowcount:
        conn.execute(table.insert().values(id=server.id, **values))


def remove_server(conn: sa.Connection, tables: JobTables, server_id: str) -> None:
    conn.execute(tables.servers.delete().where(tables.servers.c.id == server_id))


def remove_dead_servers(
    conn: sa.Connection, tables: JobTables, heartbeat_before: dt.datetime
) -> list[str]:
    table = tables.servers
    query = sa.select(table.c.id).where(table.c.heartbeat_at < heartbeat_before)
    dead = list(conn.scalars(query))
    if dead:
        conn.execute(table.delete().where(table.c.id.in_(dead)))
    return dead


def purge_finished(
    conn: sa.Connection,
    tables: JobTables,
    finished_before: dt.datetime,
    limit: int,
    states: frozenset[JobState],
) -> int:
    jobs = tables.jobs
    query = (
        sa.select(jobs.c.id)
        .where(jobs.c.state.in_(sorted(states)), jobs.c.state_at < finished_before)
        .limit(limit)
    )
    ids = list(conn.scalars(query))
    if ids:
        conn.execute(tables.history.delete().where(tables.history.c.job_id.in_(ids)))
        conn.execute(tables.logs.delete().where(tables.logs.c.job_id.in_(ids)))
        conn.execute(jobs.delete().where(jobs.c.id.in_(ids)))
    _expire_requests(conn, tables, finished_before, limit)
    return len(ids)


def purge_ticks(
    conn: sa.Connection, tables: JobTables, fired_before: dt.datetime, limit: int
) -> int:
    ticks = tables.ticks
    query = (
        sa.select(ticks.c.recurring_id, ticks.c.fire_at)
        .where(ticks.c.fire_at < fired_before)
        .limit(limit)
    )
    old = conn.execute(query).all()
    for recurring_id in {row.recurring_id for row in old}:
        fire_times = [row.fire_at for row in old if row.recurring_id == recurring_id]
        conn.execute(
            ticks.delete().where(
                ticks.c.recurring_id == recurring_id, ticks.c.fire_at.in_(fire_times)
            )
        )
    return len(old)


def purge_batches(
    conn: sa.Connection, tables: JobTables, created_before: dt.datetime, limit: int
) -> int:
    batches, jobs = tables.batches, tables.jobs
    has_jobs = sa.exists().where(jobs.c.batch_id == batches.c.id)
    has_continuation = sa.exists().where(jobs.c.id == batches.c.continuation_id)
    query = (
        sa.select(batches.c.id)
        .where(batches.c.created_at < created_before, ~has_jobs, ~has_continuation)
        .limit(limit)
    )
    ids = list(conn.scalars(query))
    if ids:
        conn.execute(batches.delete().where(batches.c.id.in_(ids)))
    return len(ids)


def _expire_requests(
    conn: sa.Connection, tables: JobTables, used_before: dt.datetime, limit: int
) -> None:
    """Forget idempotency keys first used before the cutoff (the retention period)."""
    requests = tables.requests
    key = requests.c.idempotency_key
    keys = list(conn.scalars(sa.select(key).where(requests.c.at < used_before).limit(limit)))
    if keys:
        conn.execute(requests.delete().where(key.in_(keys)))


def remove_recurring(conn: sa.Connection, tables: JobTables, recurring_id: str) -> bool:
    table, ticks = tables.recurring, tables.ticks
    conn.execute(ticks.delete().where(ticks.c.recurring_id == recurring_id))
    return bool(conn.execute(table.delete().where(table.c.id == recurring_id)).rowcount)


def set_recurring_paused(
    conn: sa.Connection,
    tables: JobTables,
    recurring_id: str,
    paused: bool,
    next_run_at: dt.datetime | None,
) -> bool:
    table = tables.recurring
    update = (
        table.update()
        .where(table.c.id == recurring_id)
        .values(paused=paused, next_run_at=next_run_at)
    )
    return bool(conn.execute(update).rowcount)
