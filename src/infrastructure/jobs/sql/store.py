"""`SQLAlchemyJobStore`: the store port on a relational database.

Statements run on a sync SQLAlchemy engine in worker threads, so one code path serves every
driver (sqlite3, psycopg, PyMySQL, pyodbc). Time always comes in as a bind parameter.
Claims skip locked rows (`FOR UPDATE SKIP LOCKED`; SQL Server `UPDLOCK, READPAST, ROWLOCK`;
SQLite serialises writers with `BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from application.jobs import (
    BatchId,
    BatchView,
    ContinueOn,
    JobFilter,
    JobId,
    JobNotFound,
    JobPulse,
    JobSort,
    JobState,
    JobSummary,
    JobView,
    JSONValue,
    LogLine,
    MinuteCount,
    Transition,
)
from infrastructure.jobs.engine import states
from infrastructure.jobs.engine.model import (
    Claim,
    Finish,
    Job,
    NewBatch,
    Output,
    RecurringJob,
    ServerInfo,
    Tick,
)
from infrastructure.jobs.sql import listing, postgresql, rows
from infrastructure.jobs.sql.tables import build_metadata
from infrastructure.jobs.sql.wakeup import Wakeup, notify_statement

T = TypeVar("T")
logger = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 5
CLOSE_WAIT_SECONDS = 30.0
"""How long `close` waits for database work still running in threads."""
"""Runs of a transaction the database rolled back as a deadlock victim (InnoDB does so to
callers waiting on a unique key whose holder rolled back)."""
_DEADLOCK_CODES = frozenset({1213, "40P01", "40001"})  # MariaDB; PostgreSQL deadlock, serialization
_ENQUEUED = "jobs_enqueued"
"""Marks a connection whose transaction made jobs enqueued."""
S = JobState


@dataclass(frozen=True, slots=True)
class _Move:
    """One transition to apply: job, target state, reason, history data."""

    job_id: JobId
    to: JobState
    reason: str
    data: dict[str, JSONValue] | None = None


class SQLAlchemyJobStore:
    def __init__(self, engine: sa.Engine, *, schema: str | None = None, prefix: str = "") -> None:
        self._engine = engine
        self.metadata = build_metadata(schema, prefix)
        tables = {table.name.removeprefix(prefix): table for table in self.metadata.tables.values()}
        self._jobs = tables["jobs"]
        self._history = tables["job_history"]
        self._logs = tables["job_logs"]
        self._batches = tables["batches"]
        self._recurring = tables["recurring_jobs"]
        self._ticks = tables["recurring_ticks"]
        self._servers = tables["servers"]
        self._dialect = engine.dialect.name
        self._wakeup = Wakeup(engine)
        self._insert_and_notify = postgresql.insert_and_notify(self._jobs, self._history)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._claim_and_record = postgresql.claim_and_record(self._jobs, self._history)
        self._notify = notify_statement(self._dialect)
        self._in_flight: set[asyncio.Future[Any]] = set()

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    async def _run(self, work: Callable[[sa.Connection], T]) -> T:
        """Run `work` in a transaction of its own, in a worker thread; wake this process's
        idle workers if it enqueued jobs."""
        enqueued = False

        def in_transaction() -> T:
            nonlocal enqueued
            with self._engine.begin() as conn:
                result = work(conn)
                enqueued = conn.info.pop(_ENQUEUED, False)
                return result

        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                result = await self._in_thread(in_transaction)
                break
            except DBAPIError as exc:
                if attempt == DEADLOCK_ATTEMPTS or not _is_deadlock(exc):
                    raise
                logger.info("transaction chosen as deadlock victim; retrying (%d)", attempt)
        if enqueued:
            self._wakeup.notify_local()
        return result

    async def wait_for_work(self, max_seconds: float) -> None:
        await self._wakeup.wait(max_seconds)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        """Run blocking database work in a worker thread. A cancelled caller does not stop
        the thread, which holds a connection until it ends, so `close` waits for it."""
        future = asyncio.ensure_future(asyncio.to_thread(work))
        self._in_flight.add(future)
        future.add_done_callback(_forget(self._in_flight))
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Stop listening for notifications and wait for work still running in threads, so
        the caller may dispose of the engine (which belongs to it)."""
        await self._wakeup.close()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=CLOSE_WAIT_SECONDS)

    def _enqueued(self, conn: sa.Connection) -> None:
        """Wake idle workers, here and (PostgreSQL) in other processes, once this transaction
        commits."""
        conn.info[_ENQUEUED] = True
        if self._notify is not None:
            conn.execute(self._notify)

    def _locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows, skipping rows other transactions hold."""
        if self._dialect == "mssql":
            return query.with_hint(self._jobs, "WITH (UPDLOCK, READPAST, ROWLOCK)", "mssql")
        if self._dialect == "sqlite":
            return query  # BEGIN IMMEDIATE already serialises writers
        return query.with_for_update(skip_locked=True)

    def _for_update(self, query: sa.Select[Any], table: sa.Table) -> sa.Select[Any]:
        """Lock the selected rows, waiting for other holders."""
        if self._dialect == "mssql":
            return query.with_hint(table, "WITH (UPDLOCK, ROWLOCK)", "mssql")
        if self._dialect == "sqlite":
            return query
        return query.with_for_update()

    # --- creating jobs -------------------------------------------------------------------
    async def create(
        self,
        jobs: Sequence[Job],
        *,
        now: dt.datetime,
        batch: NewBatch | None = None,
        session: object | None = None,
    ) -> list[JobId]:
        if session is not None:
            return await _run_in_session(
                session, lambda conn: self._create_in(conn, jobs, now, batch)
            )
        if self._dialect == "postgresql" and batch is None and len(jobs) == 1 and _plain(jobs[0]):
            return await self._create_in_one_statement(jobs[0], now)
        return await self._run(lambda conn: self._create(conn, jobs, now, batch))

    async def _create_in_one_statement(self, job: Job, now: dt.datetime) -> list[JobId]:
        """PostgreSQL: insert the job, record its first transition and wake the workers in a
        single statement."""
        params = postgresql.insert_params(job, now)

        def work() -> None:  # one statement, committed on its own: one round trip
            with self._autocommit.connect() as conn:
                conn.execute(self._insert_and_notify, params)

        await self._in_thread(work)
        self._wakeup.notify_local()
        return [job.id]

    def _create_in(
        self, conn: sa.Connection, jobs: Sequence[Job], now: dt.datetime, batch: NewBatch | None
    ) -> list[JobId]:
        """Create in the caller's transaction (PostgreSQL notifies at its commit)."""
        ids = self._create(conn, jobs, now, batch)
        conn.info.pop(_ENQUEUED, None)
        return ids

    def _create(
        self, conn: sa.Connection, jobs: Sequence[Job], now: dt.datetime, batch: NewBatch | None
    ) -> list[JobId]:
        plain = [job for job in jobs if job.parent_id is None and job.unique_key is None]
        self._insert_rows(conn, plain, now)
        ids = [
            job.id
            if job.parent_id is None and job.unique_key is None
            else self._insert(conn, job, now)
            for job in jobs
        ]
        if batch is not None:
            continuation = batch.continuation
            conn.execute(
                self._batches.insert().values(
                    id=batch.id,
                    total=len(ids),
                    continuation_id=continuation.id if continuation else None,
                    continue_on=(continuation.continue_on if continuation else ContinueOn.SUCCESS),
                    created_at=now,
                )
            )
            if continuation is not None:
                self._insert(conn, continuation, now)
                self._release_batches(conn, {batch.id}, now)
        return ids

    def _insert(self, conn: sa.Connection, job: Job, now: dt.datetime) -> JobId:
        if job.parent_id is not None:
            job = self._as_continuation(conn, job)
        if job.unique_key is None or job.state not in states.ACTIVE_STATES:
            self._insert_rows(conn, [job], now)
            return job.id
        try:
            with conn.begin_nested():
                self._insert_rows(conn, [job], now)
            return job.id
        except IntegrityError:
            existing = self._active_with_key(conn, job.unique_key)
            if existing is None:
                raise
            return existing

    def _active_with_key(self, conn: sa.Connection, key: str | None) -> JobId | None:
        found = conn.scalar(sa.select(self._jobs.c.id).where(self._jobs.c.active_key == key))
        return None if found is None else JobId(found)

    def _insert_rows(self, conn: sa.Connection, jobs: Sequence[Job], now: dt.datetime) -> None:
        """Insert new jobs with their first transition, in one statement per table."""
        if not jobs:
            return
        values = [rows.job_values(job, now) for job in jobs]
        conn.execute(self._jobs.insert(), values)
        self._record(conn, [_Move(job.id, job.state, job.reason) for job in jobs], now)
        if any(job.state is S.ENQUEUED for job in jobs):
            self._enqueued(conn)

    def _as_continuation(self, conn: sa.Connection, job: Job) -> Job:
        query = sa.select(self._jobs.c.state).where(self._jobs.c.id == job.parent_id)
        parent_state = conn.scalar(self._for_update(query, self._jobs))
        if parent_state is None:
            raise JobNotFound(f"no parent job {job.parent_id}")
        state, reason = states.continuation_start(JobState(parent_state), job.continue_on)
        return dataclasses.replace(job, state=state, reason=reason)

    # --- running jobs --------------------------------------------------------------------
    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        if self._dialect == "postgresql":
            return await self._acquire_in_one_statement(queues, now, now + lease, limit, server_id)
        return await self._run(
            lambda conn: self._acquire(conn, queues, now, now + lease, limit, server_id)
        )

    async def _acquire_in_one_statement(
        self,
        queues: Sequence[str],
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        """PostgreSQL: claim and record the transitions in one autocommitted statement per
        queue, so a woken worker starts its jobs after a single round trip."""
        token = uuid4()

        def work() -> list[Claim]:
            claimed: list[Job] = []
            with self._autocommit.connect() as conn:
                for queue in queues:
                    if len(claimed) >= limit:
                        break
                    params = postgresql.claim_params(
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

        return await self._in_thread(work)

    def _acquire(
        self,
        conn: sa.Connection,
        queues: Sequence[str],
        now: dt.datetime,
        lease_until: dt.datetime,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        token, claimed = uuid4(), list[Job]()
        for queue in queues:
            if len(claimed) >= limit:
                break
            found = self._claim_from(
                conn, queue, limit - len(claimed), token, now, lease_until, server_id
            )
            claimed += [rows.job_of(row) for row in found]
        self._record(
            conn,
            [
                _Move(
                    job.id,
                    S.PROCESSING,
                    f"claimed by {server_id}",
                    {"server_id": server_id, "attempt": job.attempt},
                )
                for job in claimed
            ],
            now,
        )
        return [Claim(job=job, token=token, lease_until=lease_until) for job in claimed]

    def _claim_from(
        self,
        conn: sa.Connection,
        queue: str,
        limit: int,
        token: UUID,
        now: dt.datetime,
        lease_until: dt.datetime,
        server_id: str,
    ) -> Sequence[sa.RowMapping]:
        """Claim the oldest enqueued jobs of one queue, skipping rows others hold; return
        them as they are after the claim."""
        jobs = self._jobs
        oldest = self._locked(
            sa.select(jobs.c.id)
            .where(jobs.c.state == S.ENQUEUED, jobs.c.queue == queue)
            .order_by(jobs.c.state_at)
            .limit(limit)
        )
        claim = jobs.update().values(
            state=S.PROCESSING,
            state_at=now,
            attempt=jobs.c.attempt + 1,
            lease_token=token,
            lease_until=lease_until,
            server_id=server_id,
        )
        if self._engine.dialect.update_returning:  # one statement
            in_oldest = jobs.c.id.in_(oldest.scalar_subquery())
            return conn.execute(claim.where(in_oldest).returning(*jobs.c)).mappings().all()
        ids = list(conn.scalars(oldest))
        if not ids:
            return []
        conn.execute(claim.where(jobs.c.id.in_(ids)))
        return conn.execute(sa.select(jobs).where(jobs.c.id.in_(ids))).mappings().all()

    async def extend(
        self,
        tokens: Sequence[tuple[JobId, UUID, Output]],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> set[JobId]:
        def work(conn: sa.Connection) -> set[JobId]:
            lost = set()
            for job_id, token, output in tokens:
                result = conn.execute(
                    self._jobs.update()
                    .where(*self._claimed(job_id, token))
                    .values(lease_until=now + lease, **_progress(output))
                )
                if result.rowcount == 0:
                    lost.add(job_id)
                else:
                    self._save_logs(conn, [(job_id, line) for line in output.logs])
            return lost

        return await self._run(work)

    def _claimed(self, job_id: JobId, token: UUID) -> list[sa.ColumnElement[bool]]:
        jobs = self._jobs
        return [jobs.c.id == job_id, jobs.c.lease_token == token, jobs.c.state == S.PROCESSING]

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        return await self._run(lambda conn: self._finish(conn, results, now))

    def _finish(
        self, conn: sa.Connection, results: Sequence[Finish], now: dt.datetime
    ) -> list[bool]:
        plain = [r for r in results if r.state is S.SUCCEEDED and r.result is None]
        recorded = self._finish_plain(conn, plain, now)
        for result in results:
            if result.job_id not in recorded and not (
                result.state is S.SUCCEEDED and result.result is None
            ):
                if self._finish_one(conn, result, now):
                    recorded.add(result.job_id)
        done = [r for r in results if r.job_id in recorded]
        self._save_logs(conn, [(r.job_id, line) for r in done for line in r.output.logs])
        moves = [_Move(r.job_id, r.state, r.reason, _data(r)) for r in done]
        self._record(conn, moves, now)
        finished = [r for r in done if r.state.is_final]
        self._after_final(
            conn,
            [_Move(r.job_id, r.state, r.reason) for r in finished],
            now,
            batch_ids={r.batch_id for r in finished if r.batch_id is not None},
        )
        return [r.job_id in recorded for r in results]

    def _finish_plain(
        self, conn: sa.Connection, results: Sequence[Finish], now: dt.datetime
    ) -> set[JobId]:
        """Successes without a result, one statement per claim (they share its token)."""
        jobs, recorded = self._jobs, set[JobId]()
        tokens = {r.token for r in results}
        for token in tokens:
            ids = [r.job_id for r in results if r.token == token]
            held = [jobs.c.id.in_(ids), jobs.c.lease_token == token, jobs.c.state == S.PROCESSING]
            update = jobs.update().values(
                state=S.SUCCEEDED,
                state_at=now,
                result="null",
                progress=100.0,
                lease_token=None,
                lease_until=None,
                server_id=None,
                active_key=None,
            )
            if self._engine.dialect.update_returning:
                recorded |= set(conn.scalars(update.where(*held).returning(jobs.c.id)))
                continue
            query = self._for_update(sa.select(jobs.c.id).where(*held), jobs)
            mine = list(conn.scalars(query))
            if mine:
                conn.execute(update.where(jobs.c.id.in_(mine)))
            recorded |= {JobId(i) for i in mine}
        return recorded

    def _finish_one(self, conn: sa.Connection, result: Finish, now: dt.datetime) -> bool:
        update = (
            self._jobs.update()
            .where(*self._claimed(result.job_id, result.token))
            .values(
                state=result.state,
                state_at=now,
                run_at=result.run_at,
                lease_token=None,
                lease_until=None,
                server_id=None,
                active_key=(
                    self._jobs.c.unique_key if result.state in states.ACTIVE_STATES else None
                ),
                **self._finish_values(result),
            )
        )
        return bool(conn.execute(update).rowcount == 1)

    @staticmethod
    def _finish_values(result: Finish) -> dict[str, Any]:
        values: dict[str, Any] = _progress(result.output)
        if result.state is S.SUCCEEDED:
            values.update(result=rows.dump(result.result), progress=100.0)
        if result.error is not None:
            values.update(
                error_type=result.error.type[:300],
                error_message=result.error.message,
                error_traceback=result.error.traceback,
            )
        return values

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        def work(conn: sa.Connection) -> None:
            moves = []
            for job_id, token in claims:
                released = conn.execute(
                    self._jobs.update()
                    .where(*self._claimed(job_id, token))
                    .values(
                        state=S.ENQUEUED,
                        state_at=now,
                        attempt=self._jobs.c.attempt - 1,
                        lease_token=None,
                        lease_until=None,
                        server_id=None,
                    )
                ).rowcount
                if released:
                    moves.append(_Move(job_id, S.ENQUEUED, reason))
            self._record(conn, moves, now)
            if moves:
                self._enqueued(conn)

        await self._run(work)

    async def enqueue_due(self, *, now: dt.datetime, limit: int) -> int:
        def work(conn: sa.Connection) -> int:
            jobs = self._jobs
            query = (
                sa.select(jobs.c.id)
                .where(jobs.c.state == S.SCHEDULED, jobs.c.run_at <= now)
                .order_by(jobs.c.run_at)
                .limit(limit)
            )
            ids = conn.scalars(self._locked(query)).all()
            self._apply(conn, [_Move(JobId(i), S.ENQUEUED, "due") for i in ids], now)
            return len(ids)

        return await self._run(work)

    async def rescue_expired(self, *, now: dt.datetime, limit: int) -> int:
        def work(conn: sa.Connection) -> int:
            jobs = self._jobs
            query = (
                sa.select(jobs.c.id, jobs.c.attempt, jobs.c.retry)
                .where(jobs.c.state == S.PROCESSING, jobs.c.lease_until < now)
                .limit(limit)
            )
            expired = conn.execute(self._locked(query)).all()
            self._apply(conn, [_rescue(row.id, row.attempt, row.retry) for row in expired], now)
            return len(expired)

        return await self._run(work)

    # --- managing jobs -------------------------------------------------------------------
    async def change_state(
        self,
        job_id: JobId,
        to: JobState,
        *,
        now: dt.datetime,
        reason: str,
        unless: frozenset[JobState] = frozenset(),
    ) -> JobState:
        def work(conn: sa.Connection) -> JobState:
            query = sa.select(self._jobs.c.state).where(self._jobs.c.id == job_id)
            found = conn.scalar(self._for_update(query, self._jobs))
            if found is None:
                raise JobNotFound(f"no job {job_id}")
            current = JobState(found)
            if current is to or current in unless:
                return current
            states.check_transition(job_id, current, to)
            if to is S.ENQUEUED and current is S.PROCESSING:
                states.check_transition(job_id, current, S.DELETED)
            self._apply(conn, [_Move(job_id, to, reason)], now)
            return current

        return await self._run(work)

    async def get(self, job_id: JobId) -> JobView | None:
        def work(conn: sa.Connection) -> JobView | None:
            row = conn.execute(sa.select(self._jobs).where(self._jobs.c.id == job_id)).mappings()
            found = row.first()
            return None if found is None else self._view(conn, found)

        return await self._run(work)

    def _view(self, conn: sa.Connection, row: sa.RowMapping) -> JobView:
        job = rows.job_of(row)
        history = conn.execute(
            sa.select(self._history)
            .where(self._history.c.job_id == job.id)
            .order_by(self._history.c.id)
        ).mappings()
        logs = conn.execute(
            sa.select(self._logs).where(self._logs.c.job_id == job.id).order_by(self._logs.c.id)
        ).mappings()
        return JobView(
            id=job.id,
            handler=job.handler,
            args=job.args,
            kwargs=job.kwargs,
            queue=job.queue,
            state=job.state,
            created_at=job.created_at,
            run_at=job.run_at,
            attempt=job.attempt,
            max_attempts=job.retry.attempts,
            history=tuple(
                Transition(
                    state=JobState(h["state"]),
                    at=h["at"],
                    reason=h["reason"],
                    data=json.loads(h["data"]) if h["data"] else {},
                )
                for h in history
            ),
            error=rows.error_of(row),
            progress=row["progress"],
            logs=tuple(LogLine(at=x["at"], level=x["level"], message=x["message"]) for x in logs),
            result=json.loads(row["result"]) if row["result"] is not None else None,
            unique_key=job.unique_key,
            parent_id=job.parent_id,
            batch_id=job.batch_id,
            recurring_id=job.recurring_id,
        )

    async def get_batch(self, batch_id: BatchId) -> BatchView | None:
        def work(conn: sa.Connection) -> BatchView | None:
            batch = (
                conn.execute(sa.select(self._batches).where(self._batches.c.id == batch_id))
                .mappings()
                .first()
            )
            if batch is None:
                return None
            counts = dict.fromkeys(JobState, 0)
            for state, count in self._batch_counts(conn, batch_id, batch["continuation_id"]):
                counts[JobState(state)] = count
            return BatchView(
                id=batch_id,
                total=batch["total"],
                counts=counts,
                continuation_id=batch["continuation_id"],
            )

        return await self._run(work)

    def _batch_counts(
        self, conn: sa.Connection, batch_id: BatchId, continuation_id: UUID | None
    ) -> list[tuple[str, int]]:
        jobs = self._jobs
        query = (
            sa.select(jobs.c.state, sa.func.count())
            .where(jobs.c.batch_id == batch_id)
            .group_by(jobs.c.state)
        )
        if continuation_id is not None:
            query = query.where(jobs.c.id != continuation_id)
        return [(state, count) for state, count in conn.execute(query).all()]

    # --- reading many jobs (operators' lists and counts) ----------------------------------
    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort,
        limit: int,
        after: tuple[dt.datetime, JobId] | None = None,
    ) -> list[JobSummary]:
        return await self._run(
            lambda conn: listing.list_jobs(
                conn, self._jobs, where, sort=sort, limit=limit, after=after
            )
        )

    async def count_jobs(self, where: JobFilter) -> int:
        return await self._run(lambda conn: listing.count_jobs(conn, self._jobs, where))

    async def count_by_state(self) -> dict[JobState, int]:
        return await self._run(lambda conn: listing.count_by_state(conn, self._jobs))

    async def finished_per_minute(
        self, *, since: dt.datetime, until: dt.datetime
    ) -> list[MinuteCount]:
        return await self._run(
            lambda conn: listing.finished_per_minute(conn, self._history, since=since, until=until)
        )

    async def queue_lengths(self) -> dict[str, tuple[int, dt.datetime]]:
        return await self._run(lambda conn: listing.queue_lengths(conn, self._jobs))

    async def running_by_server(self) -> dict[str, int]:
        return await self._run(lambda conn: listing.running_by_server(conn, self._jobs))

    async def enqueued_ahead(self, queue: str, *, before: dt.datetime) -> int:
        return await self._run(lambda conn: listing.enqueued_ahead(conn, self._jobs, queue, before))

    async def list_batches(self, limit: int) -> list[BatchView]:
        table = self._batches
        query = sa.select(table.c.id).order_by(table.c.created_at.desc(), table.c.id).limit(limit)
        ids = await self._run(lambda conn: list(conn.scalars(query)))
        return [view for batch_id in ids if (view := await self.get_batch(BatchId(batch_id)))]

    async def pulses(self, job_ids: Sequence[JobId]) -> dict[JobId, JobPulse]:
        ids = list(job_ids)
        return await self._run(lambda conn: listing.pulses(conn, self._jobs, self._logs, ids))

    # --- recurring jobs ------------------------------------------------------------------
    async def upsert_recurring(self, definition: RecurringJob) -> None:
        def work(conn: sa.Connection) -> None:
            table = self._recurring
            query = sa.select(table).where(table.c.id == definition.id)
            found = conn.execute(self._for_update(query, table)).mappings().first()
            if found is None:
                try:
                    with conn.begin_nested():
                        conn.execute(table.insert().values(rows.recurring_values(definition)))
                    return
                except IntegrityError:  # another replica inserted it first
                    found = conn.execute(self._for_update(query, table)).mappings().one()
            stored = rows.recurring_of(found)
            next_run = (
                stored.next_run_at if stored.same_schedule(definition) else (definition.next_run_at)
            )
            values = rows.recurring_values(definition)
            values.update(
                paused=stored.paused,
                next_run_at=None if stored.paused else next_run,
                last_run_at=stored.last_run_at,
                last_job_id=stored.last_job_id,
            )
            conn.execute(table.update().where(table.c.id == definition.id).values(values))

        await self._run(work)

    async def remove_recurring(self, recurring_id: str) -> bool:
        def work(conn: sa.Connection) -> bool:
            table = self._recurring
            return bool(conn.execute(table.delete().where(table.c.id == recurring_id)).rowcount)

        return await self._run(work)

    async def set_recurring_paused(
        self, recurring_id: str, paused: bool, *, next_run_at: dt.datetime | None
    ) -> bool:
        def work(conn: sa.Connection) -> bool:
            table = self._recurring
            result = conn.execute(
                table.update()
                .where(table.c.id == recurring_id)
                .values(paused=paused, next_run_at=next_run_at)
            )
            return bool(result.rowcount)

        return await self._run(work)

    async def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        def work(conn: sa.Connection) -> RecurringJob | None:
            table = self._recurring
            found = conn.execute(sa.select(table).where(table.c.id == recurring_id)).mappings()
            row = found.first()
            return None if row is None else rows.recurring_of(row)

        return await self._run(work)

    async def list_recurring(self) -> list[RecurringJob]:
        def work(conn: sa.Connection) -> list[RecurringJob]:
            query = sa.select(self._recurring).order_by(self._recurring.c.id)
            return [rows.recurring_of(row) for row in conn.execute(query).mappings()]

        return await self._run(work)

    async def due_recurring(self, *, now: dt.datetime, limit: int) -> list[RecurringJob]:
        def work(conn: sa.Connection) -> list[RecurringJob]:
            table = self._recurring
            query = (
                sa.select(table)
                .where(table.c.paused == sa.false(), table.c.next_run_at <= now)
                .order_by(table.c.next_run_at)
                .limit(limit)
            )
            return [rows.recurring_of(row) for row in conn.execute(query).mappings()]

        return await self._run(work)

    async def record_ticks(
        self,
        recurring_id: str,
        *,
        expected_next_run: dt.datetime | None,
        next_run_at: dt.datetime | None,
        ticks: Sequence[Tick],
        now: dt.datetime,
    ) -> bool:
        def work(conn: sa.Connection) -> bool:
            table = self._recurring
            expected = (
                table.c.next_run_at.is_(None)
                if expected_next_run is None
                else table.c.next_run_at == expected_next_run
            )
            moved = conn.execute(
                table.update()
                .where(table.c.id == recurring_id, expected)
                .values(
                    next_run_at=next_run_at,
                    last_run_at=ticks[-1].fire_at if ticks else table.c.last_run_at,
                    last_job_id=ticks[-1].job.id if ticks else table.c.last_job_id,
                )
            ).rowcount
            if not moved:
                return False
            if ticks:
                conn.execute(
                    self._ticks.insert(),
                    [
                        {"recurring_id": recurring_id, "fire_at": t.fire_at, "job_id": t.job.id}
                        for t in ticks
                    ],
                )
            for tick in ticks:
                self._insert(conn, tick.job, now)
            return True

        try:
            return await self._run(work)
        except IntegrityError:
            return False  # the tick ledger already holds one of these ticks

    # --- servers and retention -----------------------------------------------------------
    async def heartbeat(self, server: ServerInfo) -> None:
        def work(conn: sa.Connection) -> None:
            table = self._servers
            values = {
                "queues": rows.dump(list(server.queues)),
                "concurrency": server.concurrency,
                "started_at": server.started_at,
                "heartbeat_at": server.heartbeat_at,
            }
            updated = conn.execute(table.update().where(table.c.id == server.id).values(values))
            if not updated.rowcount:
                conn.execute(table.insert().values(id=server.id, **values))

        await self._run(work)

    async def remove_server(self, server_id: str) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(self._servers.delete().where(self._servers.c.id == server_id))

        await self._run(work)

    async def remove_dead_servers(self, *, heartbeat_before: dt.datetime) -> list[str]:
        def work(conn: sa.Connection) -> list[str]:
            table = self._servers
            dead = list(
                conn.scalars(sa.select(table.c.id).where(table.c.heartbeat_at < heartbeat_before))
            )
            if dead:
                conn.execute(table.delete().where(table.c.id.in_(dead)))
            return dead

        return await self._run(work)

    async def list_servers(self) -> list[ServerInfo]:
        def work(conn: sa.Connection) -> list[ServerInfo]:
            query = sa.select(self._servers).order_by(self._servers.c.id)
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

        return await self._run(work)

    async def purge_finished(self, *, finished_before: dt.datetime, limit: int) -> int:
        def work(conn: sa.Connection) -> int:
            jobs = self._jobs
            ids = list(
                conn.scalars(
                    sa.select(jobs.c.id)
                    .where(
                        jobs.c.state.in_([S.SUCCEEDED, S.DELETED]),
                        jobs.c.state_at < finished_before,
                    )
                    .limit(limit)
                )
            )
            if ids:
                conn.execute(self._history.delete().where(self._history.c.job_id.in_(ids)))
                conn.execute(self._logs.delete().where(self._logs.c.job_id.in_(ids)))
                conn.execute(jobs.delete().where(jobs.c.id.in_(ids)))
            return len(ids)

        return await self._run(work)

    # --- transitions ---------------------------------------------------------------------
    def _apply(self, conn: sa.Connection, moves: Sequence[_Move], now: dt.datetime) -> None:
        """Apply checked transitions of jobs no worker writes to, and what follows from them."""
        jobs = self._jobs
        for to in {move.to for move in moves}:
            ids = [move.job_id for move in moves if move.to is to]
            conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(ids))
                .values(
                    state=to,
                    state_at=now,
                    lease_token=None,
                    lease_until=None,
                    server_id=None,
                    active_key=jobs.c.unique_key if to in states.ACTIVE_STATES else None,
                )
            )
        self._record(conn, moves, now)
        if any(move.to is S.ENQUEUED for move in moves):
            self._enqueued(conn)
        self._after_final(conn, [move for move in moves if move.to.is_final], now)

    def _after_final(
        self,
        conn: sa.Connection,
        finished: Sequence[_Move],
        now: dt.datetime,
        *,
        batch_ids: set[UUID] | None = None,
    ) -> None:
        """Release the continuations and batch continuations that jobs reaching a final
        state let run (and, through `_apply`, what those in turn release)."""
        if not finished:
            return
        jobs = self._jobs
        final_state = {move.job_id: move.to for move in finished}
        ids = list(final_state)
        children = conn.execute(
            sa.select(jobs.c.id, jobs.c.parent_id, jobs.c.continue_on).where(
                jobs.c.parent_id.in_(ids), jobs.c.state == S.AWAITING
            )
        ).all()
        releases = [
            (
                child.id,
                states.continuation_release(
                    final_state[child.parent_id], ContinueOn(child.continue_on)
                ),
            )
            for child in children
        ]
        moves = [_Move(JobId(i), *release) for i, release in releases if release is not None]
        if moves:
            self._apply(conn, moves, now)
        if batch_ids is None:
            batch_ids = set(
                conn.scalars(
                    sa.select(jobs.c.batch_id).where(
                        jobs.c.id.in_(ids), jobs.c.batch_id.is_not(None)
                    )
                )
            )
        self._release_batches(conn, batch_ids, now)

    def _release_batches(
        self, conn: sa.Connection, batch_ids: Iterable[UUID], now: dt.datetime
    ) -> None:
        table, ids = self._batches, list(batch_ids)
        if not ids:
            return
        with_continuation = conn.scalars(
            sa.select(table.c.id).where(table.c.id.in_(ids), table.c.continuation_id.is_not(None))
        ).all()
        for batch_id in with_continuation:
            self._release_batch(conn, BatchId(batch_id), now)

    def _release_batch(self, conn: sa.Connection, batch_id: BatchId, now: dt.datetime) -> None:
        """Enqueue the batch's continuation if its jobs' states now allow it. The batch row is
        locked first, so the last two jobs finishing at once cannot both miss the release."""
        table = self._batches
        query = self._for_update(sa.select(table).where(table.c.id == batch_id), table)
        batch = conn.execute(query).mappings().one()
        continuation_id = batch["continuation_id"]
        continuation_state = conn.scalar(
            sa.select(self._jobs.c.state).where(self._jobs.c.id == continuation_id)
        )
        if continuation_state != S.AWAITING:
            return
        counts = self._batch_counts(conn, batch_id, continuation_id)
        job_states = [JobState(state) for state, _ in counts]
        released = states.batch_release(job_states, ContinueOn(batch["continue_on"]))
        if released is not None:
            self._apply(conn, [_Move(JobId(continuation_id), *released)], now)

    def _record(self, conn: sa.Connection, moves: Sequence[_Move], now: dt.datetime) -> None:
        if moves:
            conn.execute(
                self._history.insert(),
                [
                    {
                        "job_id": m.job_id,
                        "state": m.to,
                        "at": now,
                        "reason": m.reason,
                        "data": rows.dump(m.data) if m.data else None,
                    }
                    for m in moves
                ],
            )

    def _save_logs(self, conn: sa.Connection, lines: Sequence[tuple[JobId, LogLine]]) -> None:
        if lines:
            conn.execute(
                self._logs.insert(),
                [
                    {"job_id": job_id, "at": x.at, "level": x.level, "message": x.message}
                    for job_id, x in lines
                ],
            )


def _rescue(job_id: UUID, attempt: int, retry: str) -> _Move:
    state, reason = states.after_lease_expired(rows.load_retry(retry), attempt)
    return _Move(JobId(job_id), state, reason)


def _progress(output: Output) -> dict[str, Any]:
    return {} if output.progress is None else {"progress": output.progress}


def _data(result: Finish) -> dict[str, JSONValue] | None:
    data: dict[str, JSONValue] = {}
    if result.error is not None:
        error = result.error
        data.update(exception_type=error.type, message=error.message, traceback=error.traceback)
    if result.run_at is not None:
        data["run_at"] = result.run_at.isoformat()
    return data or None


def _is_deadlock(error: BaseException | None) -> bool:
    """A deadlock victim, also when it surfaced as a later error (on MariaDB the rollback of a
    savepoint the deadlock already discarded fails with 1305)."""
    for _ in range(10):  # the chain is short; never follow a cycle forever
        if error is None:
            return False
        original = error.orig if isinstance(error, DBAPIError) else error
        args = getattr(original, "args", ())
        if getattr(original, "sqlstate", None) in _DEADLOCK_CODES or (
            args and args[0] in _DEADLOCK_CODES
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def _plain(job: Job) -> bool:
    """No continuation, no unique key: nothing to look up before inserting."""
    return job.parent_id is None and job.unique_key is None


def _forget(in_flight: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(future: asyncio.Future[Any]) -> None:
        in_flight.discard(future)
        if not future.cancelled():
            future.exception()  # retrieved: its caller may have been cancelled meanwhile

    return done


async def _run_in_session(session: object, work: Callable[[sa.Connection], T]) -> T:
    """Run `work` on the caller's connection, inside the caller's transaction."""
    from sqlalchemy.orm import Session

    if isinstance(session, Session):
        return work(session.connection())
    if isinstance(session, sa.Connection):
        return work(session)
    run_sync = await _async_runner(session)
    if run_sync is None:
        raise TypeError(
            "session must be a SQLAlchemy Session, Connection, AsyncSession or "
            f"AsyncConnection, not {type(session).__name__}"
        )
    return await run_sync(work)


async def _async_runner(
    session: object,
) -> Callable[[Callable[[sa.Connection], T]], Awaitable[T]] | None:
    try:
        from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
    except ImportError:  # no greenlet: no async sessions either
        return None
    if isinstance(session, AsyncSession):
        return (await session.connection()).run_sync
    if isinstance(session, AsyncConnection):
        return session.run_sync
    return None
