"""`SQLAlchemyJobStore`: the store port on a relational database (SQLite, PostgreSQL,
MariaDB/MySQL, SQL Server).

The lifecycle verbs run `engine.lifecycle` in a `SqlTransaction`; reads and plain writes run
on a connection. On PostgreSQL the two hottest verbs, creating one plain job and claiming,
are one autocommitted statement each (`dialect.py`); the contract suite runs both paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TypeVar
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from application.jobs import (
    BatchId,
    BatchView,
    JobFilter,
    JobId,
    JobPulse,
    JobSort,
    JobState,
    JobSummary,
    JobView,
    MinuteCount,
)
from infrastructure.jobs.engine import lifecycle
from infrastructure.jobs.engine.model import (
    Claim,
    Job,
    NewBatch,
    RecurringJob,
    ServerInfo,
    Tick,
    UnloadableRecurring,
)
from infrastructure.jobs.engine.storage import TransactionalStore
from infrastructure.jobs.engine.store import PURGED_STATES
from infrastructure.jobs.engine.transaction import Transaction
from infrastructure.jobs.sql import dialect, housekeeping, listing, reads, rows
from infrastructure.jobs.sql.tables import JobTables, build_metadata
from infrastructure.jobs.sql.transaction import SqlTransaction
from infrastructure.jobs.sql.transactions import TransactionRunner
from infrastructure.jobs.sql.wakeup import Wakeup

T = TypeVar("T")


class SQLAlchemyJobStore(TransactionalStore):
    transaction_type: type[SqlTransaction] = SqlTransaction
    """What the lifecycle runs in; an adapter may extend it (the dramatiq outbox)."""

    def __init__(
        self,
        database: sa.Engine,
        *,
        schema: str | None = None,
        prefix: str = "",
        dialect_name: str | None = None,
        one_statement_verbs: bool = True,
    ) -> None:
        """`dialect_name` builds another database's statements (checks of SQL Server's on
        SQLite); by default, those of `database`. `one_statement_verbs=False` turns off
        PostgreSQL's one-statement create and claim (the contract suite runs both paths)."""
        self.database = database
        self.metadata = build_metadata(schema, prefix)
        self.tables = JobTables.of(self.metadata, prefix)
        self.dialect = dialect.Dialect(
            dialect_name or database.dialect.name,
            update_returning=database.dialect.update_returning,
        )
        self._wakeup = Wakeup(database)
        self._runner = TransactionRunner(database, self._wakeup)
        self._autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self._insert_and_notify = dialect.insert_and_notify(self.tables.jobs, self.tables.history)
        self._claim_and_record = dialect.claim_and_record(self.tables.jobs, self.tables.history)
        self._one_statement = one_statement_verbs and self.dialect.name == "postgresql"

    async def transaction(
        self, work: Callable[[Transaction], T], *, session: object | None = None
    ) -> T:
        return await self._runner.run(
            lambda conn: work(self.transaction_type(conn, self.tables, self.dialect)),
            session=session,
        )

    async def _run(self, work: Callable[[sa.Connection], T]) -> T:
        return await self._runner.run(work)

    async def _read(self, work: Callable[[sa.Connection], T]) -> T:
        """Run `work`, which only reads (on SQLite, without taking the write lock)."""
        return await self._runner.run(work, read_only=True)

    async def wait_for_work(self, max_seconds: float) -> None:
        await self._wakeup.wait(max_seconds)

    async def close(self) -> None:
        """Stop listening for notifications and wait for work still running in threads, so
        the caller may dispose of the database engine (which belongs to it)."""
        await self._wakeup.close()
        await self._runner.close()

    # --- PostgreSQL's one-statement verbs ----------------------------------------------------
    async def create(
        self,
        jobs: Sequence[Job],
        *,
        now: dt.datetime,
        batch: NewBatch | None = None,
        session: object | None = None,
    ) -> list[JobId]:
        one_plain = len(jobs) == 1 and lifecycle.plain(jobs[0])
        if self._one_statement and one_plain and batch is None and session is None:
            return await self._create_in_one_statement(jobs[0], now)
        return await super().create(jobs, now=now, batch=batch, session=session)

    async def _create_in_one_statement(self, job: Job, now: dt.datetime) -> list[JobId]:
        """Insert the job, record its first transition and wake the workers."""
        params = dialect.insert_params(job, now)

        def work() -> None:  # one statement, committed on its own: one round trip
            with self._autocommit.connect() as conn:
                conn.execute(self._insert_and_notify, params)

        await self._runner.in_thread(work)
        self._wakeup.notify_local()
        return [job.id]

    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        if not self._one_statement:
            return await super().acquire(
                queues, now=now, lease=lease, limit=limit, server_id=server_id
            )
        token, lease_until = uuid4(), now + lease

        def work() -> list[Claim]:  # claim and record per queue, each one round trip
            claimed: list[Job] = []
            with self._autocommit.connect() as conn:
                for queue in queues:
                    if len(claimed) >= limit:
                        break
                    params = dialect.claim_params(
                        queue=queue,
                        limit=limit - len(claimed),
                        now=now,
                        token=token,
                        lease_until=lease_until,
                        server_id=server_id,
                    )
                    found = conn.execute(self._claim_and_record, params).mappings()
                    claimed += [rows.job_of(row) for row in found]
            return [Claim(job=job, token=token, lease_until=lease_until) for job in claimed]

        return await self._runner.in_thread(work)

    async def record_ticks(
        self,
        recurring_id: str,
        *,
        expected_next_run: dt.datetime | None,
        next_run_at: dt.datetime | None,
        ticks: Sequence[Tick],
        now: dt.datetime,
    ) -> bool:
        try:
            return await super().record_ticks(
                recurring_id,
                expected_next_run=expected_next_run,
                next_run_at=next_run_at,
                ticks=ticks,
                now=now,
            )
        except IntegrityError:
            return False  # another replica recorded one of these ticks meanwhile

    # --- reads ---------------------------------------------------------------------------
    async def get(self, job_id: JobId) -> JobView | None:
        return await self._read(lambda conn: reads.get(conn, self.tables, job_id))

    async def get_batch(self, batch_id: BatchId) -> BatchView | None:
        return await self._read(lambda conn: reads.get_batch(conn, self.tables, batch_id))

    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort,
        limit: int,
        after: tuple[dt.datetime, JobId] | None = None,
    ) -> list[JobSummary]:
        def work(conn: sa.Connection) -> list[JobSummary]:
            self.dialect.plan_with_values(conn)
            return listing.list_jobs(
                conn, self.tables.jobs, where, sort=sort, limit=limit, after=after
            )

        return await self._read(work)

    async def count_jobs(self, where: JobFilter) -> int:
        def work(conn: sa.Connection) -> int:
            self.dialect.plan_with_values(conn)
            return listing.count_jobs(conn, self.tables.jobs, where)

        return await self._read(work)

    async def count_by_state(self) -> dict[JobState, int]:
        return await self._read(lambda conn: listing.count_by_state(conn, self.tables.jobs))

    async def finished_per_minute(
        self, *, since: dt.datetime, until: dt.datetime
    ) -> list[MinuteCount]:
        return await self._read(
            lambda conn: listing.finished_per_minute(
                conn, self.tables.history, since=since, until=until
            )
        )

    async def queue_lengths(self) -> dict[str, tuple[int, dt.datetime]]:
        return await self._read(lambda conn: listing.queue_lengths(conn, self.tables.jobs))

    async def running_by_server(self) -> dict[str, int]:
        return await self._read(lambda conn: listing.running_by_server(conn, self.tables.jobs))

    async def enqueued_ahead(self, queue: str, *, before: dt.datetime) -> int:
        return await self._read(
            lambda conn: listing.enqueued_ahead(conn, self.tables.jobs, queue, before)
        )

    async def list_batches(self, limit: int) -> list[BatchView]:
        return await self._read(lambda conn: reads.list_batches(conn, self.tables, limit))

    async def pulses(self, job_ids: Sequence[JobId]) -> dict[JobId, JobPulse]:
        ids = list(job_ids)
        return await self._read(
            lambda conn: listing.pulses(conn, self.tables.jobs, self.tables.logs, ids)
        )

    async def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        return await self._read(lambda conn: reads.get_recurring(conn, self.tables, recurring_id))

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringJob]:
        return await self._read(
            lambda conn: reads.list_recurring(conn, self.tables, after=after, limit=limit)
        )

    async def due_recurring(
        self, *, now: dt.datetime, limit: int
    ) -> list[RecurringJob | UnloadableRecurring]:
        return await self._read(lambda conn: reads.due_recurring(conn, self.tables, now, limit))

    async def list_servers(self) -> list[ServerInfo]:
        return await self._read(lambda conn: reads.list_servers(conn, self.tables))

    # --- plain writes --------------------------------------------------------------------
    async def remove_recurring(self, recurring_id: str) -> bool:
        return await self._run(
            lambda conn: housekeeping.remove_recurring(conn, self.tables, recurring_id)
        )

    async def set_recurring_paused(
        self, recurring_id: str, paused: bool, *, next_run_at: dt.datetime | None
    ) -> bool:
        return await self._run(
            lambda conn: housekeeping.set_recurring_paused(
                conn, self.tables, recurring_id, paused, next_run_at
            )
        )

    async def heartbeat(self, server: ServerInfo) -> None:
        await self._run(lambda conn: housekeeping.heartbeat(conn, self.tables, server))

    async def remove_server(self, server_id: str) -> None:
        await self._run(lambda conn: housekeeping.remove_server(conn, self.tables, server_id))

    async def remove_dead_servers(self, *, heartbeat_before: dt.datetime) -> list[str]:
        return await self._run(
            lambda conn: housekeeping.remove_dead_servers(conn, self.tables, heartbeat_before)
        )

    async def purge_finished(
        self,
        *,
        finished_before: dt.datetime,
        limit: int,
        states: frozenset[JobState] = PURGED_STATES,
    ) -> int:
        return await self._run(
            lambda conn: housekeeping.purge_finished(
                conn, self.tables, finished_before, limit, states
            )
        )

    async def purge_ticks(self, *, fired_before: dt.datetime, limit: int) -> int:
        return await self._run(
            lambda conn: housekeeping.purge_ticks(conn, self.tables, fired_before, limit)
        )

    async def purge_batches(self, *, created_before: dt.datetime, limit: int) -> int:
        return await self._run(
            lambda conn: housekeeping.purge_batches(conn, self.tables, created_before, limit)
        )
