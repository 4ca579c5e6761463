"""The memory store's data and its `Transaction`: reads and writes of plain Python objects.

A transaction runs without awaiting, so it is atomic on the event loop. The lifecycle checks
before it writes, so a transaction that raises has changed nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from application.jobs import (
    BatchId,
    ContinueOn,
    JobError,
    JobId,
    JobState,
    JSONValue,
    LogLine,
    Transition,
)
from infrastructure.jobs.engine.model import (
    Finish,
    Job,
    Move,
    Output,
    RecurringJob,
    ServerInfo,
    Tick,
)
from infrastructure.jobs.engine.states import ACTIVE_STATES, NOT_STARTED


@dataclass(slots=True)
class Row:
    job: Job
    history: list[Transition] = field(default_factory=list)
    token: UUID | None = None
    lease_until: dt.datetime | None = None
    server_id: str | None = None
    error: JobError | None = None
    result: JSONValue = None
    progress: float = 0.0
    logs: list[LogLine] = field(default_factory=list)

    @property
    def state(self) -> JobState:
        return self.job.state

    @property
    def state_at(self) -> dt.datetime:
        return self.history[-1].at

    def holds(self, token: UUID) -> bool:
        return self.state is JobState.PROCESSING and self.token == token


@dataclass(slots=True)
class Batch:
    job_ids: list[JobId]
    continuation_id: JobId | None
    continue_on: ContinueOn
    created_at: dt.datetime


@dataclass(slots=True)
class Data:
    rows: dict[JobId, Row] = field(default_factory=dict)
    batches: dict[BatchId, Batch] = field(default_factory=dict)
    recurring: dict[str, RecurringJob] = field(default_factory=dict)
    ledger: set[tuple[str, dt.datetime]] = field(default_factory=set)
    servers: dict[str, ServerInfo] = field(default_factory=dict)
    requests: dict[str, tuple[JobId, str, dt.datetime]] = field(default_factory=dict)
    """Idempotency keys: the job, the request's fingerprint, when first used."""


class MemoryTransaction:
    def __init__(self, data: Data) -> None:
        self._data = data
        self._rows = data.rows
        self.woke = False

    # --- jobs ----------------------------------------------------------------------------
    def lock_jobs(self, job_ids: Collection[JobId]) -> dict[JobId, Job]:
        return {i: self._rows[i].job for i in job_ids if i in self._rows}

    def holder_of(self, unique_key: str) -> JobId | None:
        for row in self._rows.values():
            if row.job.unique_key == unique_key and row.state in ACTIVE_STATES:
                return row.job.id
        return None

    def insert_jobs(self, jobs: Sequence[Job], now: dt.datetime) -> None:
        for job in jobs:
            self._rows[job.id] = Row(job=job)
        self.record([job.first_move() for job in jobs], now)

    def insert_unique(self, job: Job, now: dt.datetime) -> bool:
        assert job.unique_key is not None
        if self.holder_of(job.unique_key) is not None:
            return False
        self.insert_jobs([job], now)
        return True

    def remember_request(
        self, key: str, fingerprint: str, job_id: JobId, now: dt.datetime
    ) -> tuple[JobId, str] | None:
        if (earlier := self._data.requests.get(key)) is not None:
            return earlier[0], earlier[1]
        self._data.requests[key] = (job_id, fingerprint, now)
        return None

    def repoint_request(self, key: str, job_id: JobId) -> None:
        _, fingerprint, at = self._data.requests[key]
        self._data.requests[key] = (job_id, fingerprint, at)

    def move(self, moves: Sequence[Move], now: dt.datetime, *, contested: bool = False) -> None:
        # no other transaction runs meanwhile: the lifecycle's look at the key holds
        for move in moves:
            row = self._rows[move.job_id]
            row.token = row.lease_until = row.server_id = None
            row.job = dataclasses.replace(row.job, state=move.to)
        self.record(moves, now)

    def awaiting_children(self, parent_ids: Collection[JobId]) -> list[Job]:
        return [
            row.job
            for row in self._rows.values()
            if row.job.parent_id in parent_ids and row.state is JobState.AWAITING
        ]

    def batch_ids(self, job_ids: Collection[JobId]) -> set[BatchId]:
        jobs = (self._rows[i].job for i in job_ids if i in self._rows)
        return {job.batch_id for job in jobs if job.batch_id is not None}

    def due_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        due = [
            row.job
            for row in self._rows.values()
            if row.state is JobState.SCHEDULED and row.job.run_at and row.job.run_at <= now
        ]
        due.sort(key=lambda job: job.run_at or now)
        return [job.id for job in due[:limit]]

    def overdue_jobs(self, now: dt.datetime, limit: int) -> list[JobId]:
        return [
            row.job.id
            for row in self._rows.values()
            if row.state in NOT_STARTED and row.job.expired(now)
        ][:limit]

    def expired_jobs(self, now: dt.datetime, limit: int) -> list[Job]:
        return [
            row.job
            for row in self._rows.values()
            if row.state is JobState.PROCESSING and row.lease_until and row.lease_until < now
        ][:limit]

    # --- claims --------------------------------------------------------------------------
    def claim(
        self,
        queue: str,
        *,
        limit: int,
        now: dt.datetime,
        token: UUID,
        lease_until: dt.datetime,
        server_id: str,
    ) -> list[Job]:
        ready = [
            r for r in self._rows.values() if r.state is JobState.ENQUEUED and r.job.queue == queue
        ]
        ready.sort(key=lambda row: row.state_at)
        claimed = []
        for row in ready[:limit]:
            row.job = dataclasses.replace(
                row.job, state=JobState.PROCESSING, attempt=row.job.attempt + 1
            )
            row.token, row.lease_until, row.server_id = token, lease_until, server_id
            claimed.append(row.job)
        return claimed

    def extend(self, job_id: JobId, token: UUID, lease_until: dt.datetime, output: Output) -> bool:
        row = self._claimed(job_id, token)
        if row is None:
            return False
        row.lease_until = lease_until
        if output.progress is not None:
            row.progress = output.progress
        return True

    def write_finishes(self, results: Sequence[Finish], now: dt.datetime) -> set[JobId]:
        written = set()
        for result in results:
            row = self._claimed(result.job_id, result.token)
            if row is None:
                continue
            if result.output.progress is not None:
                row.progress = result.output.progress
            if result.state is JobState.SUCCEEDED:
                row.result, row.progress = result.result, 100.0
            row.error = result.error or row.error
            row.token = row.lease_until = row.server_id = None
            row.job = dataclasses.replace(
                row.job,
                state=result.state,
                run_at=result.run_at or row.job.run_at,  # the due time stays shown
                queue=result.queue or row.job.queue,
            )
            written.add(result.job_id)
        return written

    def unclaim(self, claims: Sequence[tuple[JobId, UUID]], now: dt.datetime) -> list[JobId]:
        released = []
        for job_id, token in claims:
            row = self._claimed(job_id, token)
            if row is not None:
                row.token = row.lease_until = row.server_id = None
                row.job = dataclasses.replace(
                    row.job, state=JobState.ENQUEUED, attempt=row.job.attempt - 1
                )
                released.append(job_id)
        return released

    def record(self, moves: Sequence[Move], now: dt.datetime) -> None:
        for move in moves:
            transition = Transition(state=move.to, at=now, reason=move.reason, data=move.data or {})
            self._rows[move.job_id].history.append(transition)

    def save_logs(self, lines: Sequence[tuple[JobId, LogLine]]) -> None:
        for job_id, line in lines:
            self._rows[job_id].logs.append(line)

    def wake_workers(self) -> None:
        self.woke = True

    def _claimed(self, job_id: JobId, token: UUID) -> Row | None:
        row = self._rows.get(job_id)
        return row if row is not None and row.holds(token) else None

    # --- batches -------------------------------------------------------------------------
    def insert_batch(
        self,
        batch_id: BatchId,
        *,
        job_ids: Sequence[JobId],
        continuation: Job | None,
        now: dt.datetime,
    ) -> None:
        self._data.batches[batch_id] = Batch(
            job_ids=list(job_ids),
            continuation_id=continuation.id if continuation else None,
            continue_on=continuation.continue_on if continuation else ContinueOn.SUCCESS,
            created_at=now,
        )

    def lock_batch(self, batch_id: BatchId) -> tuple[JobId, ContinueOn] | None:
        batch = self._data.batches.get(batch_id)
        if batch is None or batch.continuation_id is None:
            return None
        return batch.continuation_id, batch.continue_on

    def batch_states(self, batch_id: BatchId, continuation_id: JobId | None) -> list[JobState]:
        batch = self._data.batches[batch_id]
        return [self._rows[i].state for i in batch.job_ids if i in self._rows]

    # --- recurring jobs ------------------------------------------------------------------
    def lock_recurring(self, recurring_id: str) -> RecurringJob | None:
        return self._data.recurring.get(recurring_id)

    def insert_recurring(self, definition: RecurringJob) -> bool:
        if definition.id in self._data.recurring:
            return False
        self._data.recurring[definition.id] = definition
        return True

    def update_recurring(self, definition: RecurringJob) -> None:
        self._data.recurring[definition.id] = definition

    def move_schedule(
        self,
        recurring_id: str,
        *,
        expected: dt.datetime | None,
        next_run_at: dt.datetime | None,
        last: Tick | None,
    ) -> bool:
        stored = self._data.recurring.get(recurring_id)
        if stored is None or stored.next_run_at != expected:
            return False
        moved = dataclasses.replace(stored, next_run_at=next_run_at)
        if last is not None:
            moved = dataclasses.replace(moved, last_run_at=last.fire_at, last_job_id=last.job.id)
        self._data.recurring[recurring_id] = moved
        return True

    def ticks_recorded(self, recurring_id: str, fire_times: Sequence[dt.datetime]) -> bool:
        return any((recurring_id, fire_at) in self._data.ledger for fire_at in fire_times)

    def add_ticks(self, recurring_id: str, ticks: Sequence[Tick]) -> None:
        self._data.ledger.update((recurring_id, tick.fire_at) for tick in ticks)
