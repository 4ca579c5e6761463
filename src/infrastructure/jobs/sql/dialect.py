"""What differs between databases: how rows are locked, how other processes are woken, and
PostgreSQL's one-round-trip statements.

Locking: PostgreSQL and MariaDB `FOR UPDATE [SKIP LOCKED]`, SQL Server `UPDLOCK, ROWLOCK
[, READPAST]` hints, SQLite nothing (`BEGIN IMMEDIATE` already serialises writers).

On PostgreSQL, creating a job and claiming a queue's oldest jobs are each one autocommitted
statement of data-modifying CTEs, which also records the transitions (and, creating, wakes
the workers). Each builder has a function for its parameters, so the bind names stay here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from application.jobs import JobState
from infrastructure.jobs.engine.model import Job
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.tables import UTCDateTime
from infrastructure.jobs.sql.wakeup import CHANNEL


class Dialect:
    """The statements that differ by database, for the database named `name`."""

    def __init__(self, name: str, *, update_returning: bool) -> None:
        self.name = name
        self.update_returning = update_returning
        """UPDATE ... RETURNING works: a claim is one statement."""
        self.notify: sa.TextClause | None = (
            sa.text(f"NOTIFY {CHANNEL}") if name == "postgresql" else None
        )
        """Wakes other processes' workers at commit, where the database can."""

    def plan_with_values(self, conn: sa.Connection) -> None:
        """Plan this transaction's statements for the values they are given. PostgreSQL would
        reuse a generic plan for a prepared statement, which guesses at a filter's values (the
        operators' lists: a text no job holds made it walk every job)."""
        if self.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")

    def skip_locked(self, query: sa.Select[Any], table: sa.Table) -> sa.Select[Any]:
        """Lock the selected rows, skipping rows other transactions hold."""
        if self.name == "mssql":
            return query.with_hint(table, "WITH (UPDLOCK, READPAST, ROWLOCK)", "mssql")
        if self.name == "sqlite":
            return query
        return query.with_for_update(skip_locked=True)

    def for_update(self, query: sa.Select[Any], table: sa.Table) -> sa.Select[Any]:
        """Lock the selected rows, waiting for other holders."""
        if self.name == "mssql":
            return query.with_hint(table, "WITH (UPDLOCK, ROWLOCK)", "mssql")
        if self.name == "sqlite":
            return query
        return query.with_for_update()


def insert_and_notify(jobs: sa.Table, history: sa.Table) -> sa.Select[Any]:
    """Insert a job, record its first transition and notify the workers."""
    columns = [c for c in jobs.c if c.name in rows.JOB_COLUMNS]
    new_job = (
        jobs.insert()
        .values({c.name: sa.bindparam(f"job_{c.name}", type_=c.type) for c in columns})
        .returning(jobs.c.id)
        .cte("new_job")
    )
    first = sa.select(
        new_job.c.id,
        sa.bindparam("first_state", type_=sa.String()),
        sa.bindparam("first_at", type_=UTCDateTime()),
        sa.bindparam("first_reason", type_=sa.Text()),
        sa.bindparam("first_data", type_=sa.Text()),
    )
    history_row = history.insert().from_select(["job_id", "state", "at", "reason", "data"], first)
    return sa.select(sa.func.pg_notify(CHANNEL, "")).add_cte(
        new_job, history_row.cte("new_history")
    )


def insert_params(job: Job, now: dt.datetime) -> dict[str, Any]:
    params = {f"job_{key}": value for key, value in rows.job_values(job, now).items()}
    first = job.first_move()
    params.update(
        first_state=job.state.value,
        first_at=now,
        first_reason=job.reason,
        first_data=rows.dump(first.data) if first.data else None,
    )
    return params


def claim_and_record(jobs: sa.Table, history: sa.Table) -> sa.Select[Any]:
    """Claim up to a limit of a queue's oldest enqueued jobs, skipping locked rows; record the
    transitions; return the claimed rows. (Bind names carry a `p_` prefix: in an UPDATE, a
    name equal to a column's would set that column.)"""
    now = sa.bindparam("p_now", type_=UTCDateTime())
    server_id = sa.bindparam("p_server_id", type_=sa.String())
    oldest = (
        sa.select(jobs.c.id)
        .where(jobs.c.state == JobState.ENQUEUED, jobs.c.queue == sa.bindparam("p_queue"))
        .order_by(jobs.c.state_at)
        .limit(sa.bindparam("p_limit", type_=sa.Integer()))
        .with_for_update(skip_locked=True)
    )
    claimed = (
        jobs.update()
        .where(jobs.c.id.in_(oldest.scalar_subquery()))
        .values(
            state=JobState.PROCESSING,
            state_at=now,
            attempt=jobs.c.attempt + 1,
            lease_token=sa.bindparam("p_token", type_=sa.Uuid()),
            lease_until=sa.bindparam("p_lease_until", type_=UTCDateTime()),
            server_id=server_id,
        )
        .returning(*jobs.c)
        .cte("claimed")
    )
    transitions = sa.select(
        claimed.c.id,
        sa.literal(JobState.PROCESSING.value),
        now,
        sa.func.concat("claimed by ", server_id),
        sa.cast(
            sa.func.json_build_object("server_id", server_id, "attempt", claimed.c.attempt),
            sa.Text(),
        ),
    )
    record = history.insert().from_select(["job_id", "state", "at", "reason", "data"], transitions)
    return sa.select(claimed).add_cte(record.cte("claim_history"))


def claim_params(
    *,
    queue: str,
    limit: int,
    now: dt.datetime,
    token: UUID,
    lease_until: dt.datetime,
    server_id: str,
) -> dict[str, Any]:
    return {
        "p_queue": queue,
        "p_limit": limit,
        "p_now": now,
        "p_token": token,
        "p_lease_until": lease_until,
        "p_server_id": server_id,
    }
