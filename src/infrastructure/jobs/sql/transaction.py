"""`SqlTransaction`: the store `Transaction` on one SQLAlchemy connection. Every value is a
bind parameter; time always comes in as one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from application.jobs import BatchId, ContinueOn, JobId, JobState, UniqueKeyHeld
from infrastructure.jobs.engine.model import Job, Move, RecurringJob, Tick
from infrastructure.jobs.engine.states import ACTIVE_STATES, NOT_STARTED
from infrastructure.jobs.sql import reads, rows
from infrastructure.jobs.sql.claims import VOID_CLAIM, SqlClaims


class SqlTransaction(SqlClaims):
    """Jobs, batches and recurring jobs here; claims and history in `SqlClaims`."""

    # --- jobs ----------------------------------------------------------------------------
    def lock_jobs(self, job_ids: Collection[JobId]) -> dict[JobId, Job]:
        jobs = self._jobs
        query = self._dialect.for_update(sa.select(jobs).where(jobs.c.id.in_(job_ids)), jobs)
        found = (rows.job_of(row) for row in self._conn.execute(query).mappings())
        return {job.id: job for job in found}

    def holder_of(self, unique_key: str) -> JobId | None:
        jobs = self._jobs
        found = self._conn.scalar(sa.select(jobs.c.id).where(jobs.c.active_key == unique_key))
        return None if found is None else JobId(found)

    def insert_jobs(self, jobs: Sequence[Job], now: dt.datetime) -> None:
        if jobs:
            self._conn.execute(self._jobs.insert(), [rows.job_values(job, now) for job in jobs])
            self.record([job.first_move() for job in jobs], now)

    def insert_unique(self, job: Job, now: dt.datetime) -> bool:
        try:
            with self._conn.begin_nested():
                self.insert_jobs([job], now)
        except IntegrityError:
            return False
        return True

    def remember_request(
        self, key: str, fingerprint: str, job_id: JobId, now: dt.datetime
    ) -> tuple[JobId, str] | None:
        table = self._tables.requests
        try:
            with self._conn.begin_nested():
                values = {"idempotency_key": key, "fingerprint": fingerprint, "job_id": job_id}
                self._conn.execute(table.insert().values(at=now, **values))
        except IntegrityError:
            query = sa.select(table.c.job_id, table.c.fingerprint)
            query = query.where(table.c.idempotency_key == key)  # locked: the latest commit
            found = self._conn.execute(self._dialect.for_update(query, table)).one()
            return JobId(found.job_id), found.fingerprint
        return None

    def repoint_request(self, key: str, job_id: JobId) -> None:
        table = self._tables.requests
        update = table.update().where(table.c.idempotency_key == key)
        self._conn.execute(update.values(job_id=job_id))

    def move(self, moves: Sequence[Move], now: dt.datetime, *, contested: bool = False) -> None:
        if not contested:
            self._move(moves, now)
            return
        try:
            with self._conn.begin_nested():  # the unique index decides, even in a race
                self._move(moves, now)
        except IntegrityError:
            raise UniqueKeyHeld(
                "another active job took the unique key meanwhile", key="", holder=None
            ) from None

    def _move(self, moves: Sequence[Move], now: dt.datetime) -> None:
        jobs = self._jobs
        for to in {move.to for move in moves}:
            ids = [move.job_id for move in moves if move.to is to]
            self._conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(ids))
                .values(
                    state=to,
                    state_at=now,
                    active_key=jobs.c.unique_key if to in ACTIVE_STATES else None,
                    **VOID_CLAIM,
                )
            )
        self.record(moves, now)

    def awaiting_children(self, parent_ids: Collection[JobId]) -> list[Job]:
        jobs = self._jobs
        query = sa.select(jobs).where(
            jobs.c.parent_id.in_(parent_ids), jobs.c.state == JobState.AWAITING
        )
        return [rows.job_of(row) for row in self._conn.execute(query).mappings()]

    def batch_ids(self, job_ids: Collection[JobId]) -> set[BatchId]:
        jobs = self._jobs
        query = sa.select(jobs.c.batch_id).where(
            jobs.c.id.in_(job_ids), jobs.c.batch_id.is_not(None)
        )
        return {BatchId(batch_id) for batch_id in self._conn.scalars(query)}

    def due_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        jobs = self._jobs
        query = (
            sa.select(jobs.c.id)
            .where(jobs.c.state == JobState.SCHEDULED, jobs.c.run_at <= now)
            .order_by(jobs.c.run_at)
            .limit(limit)
        )
        return [JobId(i) for i in self._conn.scalars(self._dialect.skip_locked(query, jobs))]

    def overdue_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        jobs = self._jobs
        query = (
            sa.select(jobs.c.id)
            .where(jobs.c.expires_at <= now, jobs.c.state.in_([s.value for s in NOT_STARTED]))
            .limit(limit)
        )
        return [JobId(i) for i in self._conn.scalars(self._dialect.skip_locked(query, jobs))]

    def expired_jobs(self, now: dt.datetime, limit: int) -> list[Job]:
        jobs = self._jobs
        query = (
            sa.select(jobs)
            .where(jobs.c.state == JobState.PROCESSING, jobs.c.lease_until < now)
            .limit(limit)
        )
        found = self._conn.execute(self._dialect.skip_locked(query, jobs)).mappings()
        return [rows.job_of(row) for row in found]

    # --- batches -------------------------------------------------------------------------
    def insert_batch(
        self,
        batch_id: BatchId,
        *,
        job_ids: Sequence[JobId],
        continuation: Job | None,
        now: dt.datetime,
    ) -> None:
        self._conn.execute(
            self._tables.batches.insert().values(
                id=batch_id,
                total=len(job_ids),
                continuation_id=continuation.id if continuation else None,
                continue_on=continuation.continue_on if continuation else ContinueOn.SUCCESS,
                created_at=now,
            )
        )

    def lock_batch(self, batch_id: BatchId) -> tuple[JobId, ContinueOn] | None:
        table = self._tables.batches
        query = sa.select(table.c.continuation_id, table.c.continue_on).where(
            table.c.id == batch_id
        )
        # Most batches have no continuation: only those with one are locked (every finishing
        # job of a batch comes here, and would otherwise queue behind the others).
        found = self._conn.execute(query).first()
        if found is None or found.continuation_id is None:
            return None
        locked = self._conn.execute(self._dialect.for_update(query, table)).one()
        return JobId(locked.continuation_id), ContinueOn(locked.continue_on)

    def batch_states(self, batch_id: BatchId, continuation_id: JobId | None) -> list[JobState]:
        counts = reads.batch_counts(self._conn, self._jobs, batch_id, continuation_id)
        return [state for state, count in counts.items() for _ in range(count)]

    # --- recurring jobs ------------------------------------------------------------------
    def lock_recurring(self, recurring_id: str) -> RecurringJob | None:
        table = self._tables.recurring
        query = self._dialect.for_update(sa.select(table).where(table.c.id == recurring_id), table)
        found = self._conn.execute(query).mappings().first()
        return None if found is None else rows.recurring_of(found)

    def insert_recurring(self, definition: RecurringJob) -> bool:
        try:
            with self._conn.begin_nested():
                insert = self._tables.recurring.insert()
                self._conn.execute(insert.values(rows.recurring_values(definition)))
        except IntegrityError:
            return False
        return True

    def update_recurring(self, definition: RecurringJob) -> None:
        table = self._tables.recurring
        values = rows.recurring_values(definition)
        self._conn.execute(table.update().where(table.c.id == definition.id).values(values))

    def move_schedule(
        self,
        recurring_id: str,
        *,
        expected: dt.datetime | None,
        next_run_at: dt.datetime | None,
        last: Tick | None,
    ) -> bool:
        table = self._tables.recurring
        still = (
            table.c.next_run_at.is_(None) if expected is None else table.c.next_run_at == expected
        )
        values: dict[str, object] = {"next_run_at": next_run_at}
        if last is not None:
            values.update(last_run_at=last.fire_at, last_job_id=last.job.id)
        update = table.update().where(table.c.id == recurring_id, still).values(values)
        return bool(self._conn.execute(update).rowcount)

    def ticks_recorded(self, recurring_id: str, fire_times: Sequence[dt.datetime]) -> bool:
        if not fire_times:
            return False
        ticks = self._tables.ticks
        query = sa.select(ticks.c.fire_at).where(
            ticks.c.recurring_id == recurring_id, ticks.c.fire_at.in_(fire_times)
        )
        return self._conn.execute(query.limit(1)).first() is not None

    def add_ticks(self, recurring_id: str, ticks: Sequence[Tick]) -> None:
        if ticks:
            self._conn.execute(
                self._tables.ticks.insert(),
                [
                    {"recurring_id": recurring_id, "fire_at": t.fire_at, "job_id": t.job.id}
                    for t in ticks
                ],
            )
