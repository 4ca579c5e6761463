"""`InMemoryJobStore`: the store port in process memory.

Each method runs without awaiting, so it is atomic on the event loop, like a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from application.jobs import (
    BatchId,
    BatchView,
    ContinueOn,
    JobError,
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


@dataclass(slots=True)
class _Row:
    job: Job
    history: list[Transition] = field(default_factory=list)
    token: UUID | None = None
    lease_until: dt.datetime | None = None
    server_id: str | None = None
    error: JobError | None = None
    result: JSONValue = None
    progress: float = 0.0
    logs: list[LogLine] = field(default_factory=list)
    finished_at: dt.datetime | None = None

    @property
    def state(self) -> JobState:
        return self.job.state


_SORTS: dict[JobSort, tuple[str, bool]] = {
    JobSort.NEWEST: ("created_at", True),
    JobSort.OLDEST: ("created_at", False),
    JobSort.RECENTLY_CHANGED: ("state_at", True),
    JobSort.LEAST_RECENTLY_CHANGED: ("state_at", False),
}
"""Each allowed sort: the summary field and whether it descends (ties go by id the same way)."""
_OUTCOMES = (JobState.SUCCEEDED, JobState.FAILED)
_MINUTE = dt.timedelta(minutes=1)


@dataclass(slots=True)
class _Batch:
    job_ids: list[JobId]
    continuation_id: JobId | None
    continue_on: ContinueOn


class InMemoryJobStore:
    def __init__(self) -> None:
        self._rows: dict[JobId, _Row] = {}
        self._batches: dict[BatchId, _Batch] = {}
        self._recurring: dict[str, RecurringJob] = {}
        self._ledger: set[tuple[str, dt.datetime]] = set()
        self._servers: dict[str, ServerInfo] = {}
        self._work = asyncio.Event()

    # --- creating jobs -------------------------------------------------------------------
    async def create(
        self,
        jobs: Sequence[Job],
        *,
        now: dt.datetime,
        batch: NewBatch | None = None,
        session: object | None = None,
    ) -> list[JobId]:
        for job in jobs:
            if job.parent_id is not None and job.parent_id not in self._rows:
                raise JobNotFound(f"no parent job {job.parent_id}")
        ids = [self._insert(job, now) for job in jobs]
        if batch is not None:
            self._create_batch(batch, ids, now)
        return ids

    def _insert(self, job: Job, now: dt.datetime) -> JobId:
        existing = self._active_with_key(job.unique_key)
        if existing is not None:
            return existing
        if job.parent_id is not None:
            parent_state = self._rows[job.parent_id].state
            state, reason = states.continuation_start(parent_state, job.continue_on)
            job = dataclasses.replace(job, state=state, reason=reason)
        self._rows[job.id] = _Row(job=job)
        if job.state is JobState.ENQUEUED:
            self._work.set()
        self._record(self._rows[job.id], job.state, now, job.reason)
        return job.id

    def _create_batch(self, batch: NewBatch, ids: list[JobId], now: dt.datetime) -> None:
        continuation = batch.continuation
        record = _Batch(
            job_ids=ids,
            continuation_id=continuation.id if continuation else None,
            continue_on=continuation.continue_on if continuation else ContinueOn.SUCCESS,
        )
        self._batches[batch.id] = record
        if continuation is not None:
            self._insert(continuation, now)
            self._release_batch(batch.id, now)

    def _active_with_key(self, key: str | None) -> JobId | None:
        if key is None:
            return None
        for row in self._rows.values():
            if row.job.unique_key == key and row.state in states.ACTIVE_STATES:
                return row.job.id
        return None

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
        rank = {queue: i for i, queue in enumerate(queues)}
        ready = sorted(
            (
                r
                for r in self._rows.values()
                if r.state is JobState.ENQUEUED and r.job.queue in rank
            ),
            key=lambda r: (rank[r.job.queue], r.history[-1].at),
        )
        claims = []
        for row in ready[:limit]:
            row.job = dataclasses.replace(row.job, attempt=row.job.attempt + 1)
            row.token, row.lease_until, row.server_id = uuid4(), now + lease, server_id
            self._move(
                row,
                JobState.PROCESSING,
                now,
                f"claimed by {server_id}",
                {"server_id": server_id, "attempt": row.job.attempt},
            )
            claims.append(Claim(job=row.job, token=row.token, lease_until=row.lease_until))
        return claims

    async def extend(
        self,
        tokens: Sequence[tuple[JobId, UUID, Output]],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> set[JobId]:
        lost = set()
        for job_id, token, output in tokens:
            row = self._claimed(job_id, token)
            if row is None:
                lost.add(job_id)
                continue
            row.lease_until = now + lease
            self._save_output(row, output)
        return lost

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        return [self._finish_one(result, now) for result in results]

    def _finish_one(self, result: Finish, now: dt.datetime) -> bool:
        row = self._claimed(result.job_id, result.token)
        if row is None:
            return False
        self._save_output(row, result.output)
        row.error = result.error or row.error
        if result.state is JobState.SUCCEEDED:
            row.result, row.progress = result.result, 100.0
        data: dict[str, JSONValue] = {}
        if result.error is not None:
            error = result.error
            data = {"exception_type": error.type, "message": error.message}
            data["traceback"] = error.traceback
        if result.run_at is not None:
            data["run_at"] = result.run_at.isoformat()
        row.job = dataclasses.replace(row.job, run_at=result.run_at)
        self._move(row, result.state, now, result.reason, data)
        return True

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        for job_id, token in claims:
            row = self._claimed(job_id, token)
            if row is not None:
                row.job = dataclasses.replace(row.job, attempt=row.job.attempt - 1)
                self._move(row, JobState.ENQUEUED, now, reason)

    async def wait_for_work(self, max_seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), max_seconds)
        self._work.clear()

    async def enqueue_due(self, *, now: dt.datetime, limit: int) -> int:
        due = [
            row
            for row in self._rows.values()
            if row.state is JobState.SCHEDULED
            and row.job.run_at is not None
            and row.job.run_at <= now
        ]
        due.sort(key=lambda row: row.job.run_at or now)
        for row in due[:limit]:
            self._move(row, JobState.ENQUEUED, now, "due")
        return len(due[:limit])

    async def rescue_expired(self, *, now: dt.datetime, limit: int) -> int:
        expired = [
            row
            for row in self._rows.values()
            if row.state is JobState.PROCESSING
            and row.lease_until is not None
            and row.lease_until < now
        ][:limit]
        for row in expired:
            state, reason = states.after_lease_expired(row.job.retry, row.job.attempt)
            self._move(row, state, now, reason)
        return len(expired)

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
        row = self._rows.get(job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        current = row.state
        if current is to or current in unless:
            return current
        states.check_transition(job_id, current, to)
        if to is JobState.ENQUEUED and current is JobState.PROCESSING:
            states.check_transition(job_id, current, JobState.DELETED)
        self._move(row, to, now, reason)
        return current

    async def get(self, job_id: JobId) -> JobView | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        job = row.job
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
            history=tuple(row.history),
            error=row.error,
            progress=row.progress,
            logs=tuple(row.logs),
            result=row.result,
            unique_key=job.unique_key,
            parent_id=job.parent_id,
            batch_id=job.batch_id,
            recurring_id=job.recurring_id,
        )

    async def get_batch(self, batch_id: BatchId) -> BatchView | None:
        batch = self._batches.get(batch_id)
        if batch is None:
            return None
        counts = dict.fromkeys(JobState, 0)
        for state in self._batch_states(batch):
            counts[state] += 1
        return BatchView(
            id=batch_id,
            total=len(batch.job_ids),
            counts=counts,
            continuation_id=batch.continuation_id,
        )

    # --- reading many jobs (operators' lists and counts) ----------------------------------
    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort,
        limit: int,
        after: tuple[dt.datetime, JobId] | None = None,
    ) -> list[JobSummary]:
        field_name, descending = _SORTS[sort]

        def key(summary: JobSummary) -> tuple[dt.datetime, JobId]:
            return getattr(summary, field_name), summary.id

        found = [_summary(row) for row in self._rows.values() if _matches(row.job, where)]
        found.sort(key=key, reverse=descending)
        if after is not None:
            found = [s for s in found if (key(s) < after if descending else key(s) > after)]
        return found[:limit]

    async def count_jobs(self, where: JobFilter) -> int:
        return sum(1 for row in self._rows.values() if _matches(row.job, where))

    async def count_by_state(self) -> dict[JobState, int]:
        return dict(Counter(row.state for row in self._rows.values()))

    async def finished_per_minute(
        self, *, since: dt.datetime, until: dt.datetime
    ) -> list[MinuteCount]:
        counts = Counter(
            ((t.at - since) // _MINUTE, t.state)
            for row in self._rows.values()
            for t in row.history
            if t.state in _OUTCOMES and since <= t.at < until
        )
        return [
            MinuteCount(
                minute=since + minute * _MINUTE,
                succeeded=counts[minute, JobState.SUCCEEDED],
                failed=counts[minute, JobState.FAILED],
            )
            for minute in sorted({minute for minute, _ in counts})
        ]

    async def queue_lengths(self) -> dict[str, tuple[int, dt.datetime]]:
        lengths: dict[str, tuple[int, dt.datetime]] = {}
        for row in self._rows.values():
            if row.state is JobState.ENQUEUED:
                count, oldest = lengths.get(row.job.queue, (0, row.history[-1].at))
                lengths[row.job.queue] = (count + 1, min(oldest, row.history[-1].at))
        return lengths

    async def running_by_server(self) -> dict[str, int]:
        return dict(
            Counter(
                r.server_id
                for r in self._rows.values()
                if r.state is JobState.PROCESSING and r.server_id
            )
        )

    async def enqueued_ahead(self, queue: str, *, before: dt.datetime) -> int:
        return sum(
            1
            for r in self._rows.values()
            if r.state is JobState.ENQUEUED and r.job.queue == queue and r.history[-1].at < before
        )

    async def list_batches(self, limit: int) -> list[BatchView]:
        newest = list(reversed(self._batches))[:limit]  # dicts keep the order of creation
        return [view for batch_id in newest if (view := await self.get_batch(batch_id))]

    async def pulses(self, job_ids: Sequence[JobId]) -> dict[JobId, JobPulse]:
        return {
            job_id: JobPulse(
                state=row.state,
                state_at=row.history[-1].at,
                progress=row.progress,
                log_lines=len(row.logs),
            )
            for job_id in job_ids
            if (row := self._rows.get(job_id)) is not None
        }

    # --- recurring jobs ------------------------------------------------------------------
    async def upsert_recurring(self, definition: RecurringJob) -> None:
        stored = self._recurring.get(definition.id)
        if stored is not None:
            definition = dataclasses.replace(
                definition,
                paused=stored.paused,
                next_run_at=stored.next_run_at
                if stored.same_schedule(definition)
                else definition.next_run_at,
                last_run_at=stored.last_run_at,
                last_job_id=stored.last_job_id,
            )
            if stored.paused:
                definition = dataclasses.replace(definition, next_run_at=None)
        self._recurring[definition.id] = definition

    async def remove_recurring(self, recurring_id: str) -> bool:
        return self._recurring.pop(recurring_id, None) is not None

    async def set_recurring_paused(
        self, recurring_id: str, paused: bool, *, next_run_at: dt.datetime | None
    ) -> bool:
        stored = self._recurring.get(recurring_id)
        if stored is None:
            return False
        self._recurring[recurring_id] = dataclasses.replace(
            stored, paused=paused, next_run_at=next_run_at
        )
        return True

    async def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        return self._recurring.get(recurring_id)

    async def list_recurring(self) -> list[RecurringJob]:
        return [self._recurring[key] for key in sorted(self._recurring)]

    async def due_recurring(self, *, now: dt.datetime, limit: int) -> list[RecurringJob]:
        due = [
            r
            for r in self._recurring.values()
            if not r.paused and r.next_run_at is not None and r.next_run_at <= now
        ]
        return sorted(due, key=lambda r: r.next_run_at or now)[:limit]

    async def record_ticks(
        self,
        recurring_id: str,
        *,
        expected_next_run: dt.datetime | None,
        next_run_at: dt.datetime | None,
        ticks: Sequence[Tick],
        now: dt.datetime,
    ) -> bool:
        stored = self._recurring.get(recurring_id)
        if stored is None or stored.next_run_at != expected_next_run:
            return False
        keys = [(recurring_id, tick.fire_at) for tick in ticks]
        if any(key in self._ledger for key in keys):
            return False
        self._ledger.update(keys)
        ids = [self._insert(tick.job, now) for tick in ticks]
        self._recurring[recurring_id] = dataclasses.replace(
            stored,
            next_run_at=next_run_at,
            last_run_at=ticks[-1].fire_at if ticks else stored.last_run_at,
            last_job_id=ids[-1] if ids else stored.last_job_id,
        )
        return True

    # --- servers and retention -----------------------------------------------------------
    async def heartbeat(self, server: ServerInfo) -> None:
        self._servers[server.id] = server

    async def remove_server(self, server_id: str) -> None:
        self._servers.pop(server_id, None)

    async def remove_dead_servers(self, *, heartbeat_before: dt.datetime) -> list[str]:
        dead = [s.id for s in self._servers.values() if s.heartbeat_at < heartbeat_before]
        for server_id in dead:
            del self._servers[server_id]
        return dead

    async def list_servers(self) -> list[ServerInfo]:
        return sorted(self._servers.values(), key=lambda s: s.id)

    async def close(self) -> None:
        return None

    async def purge_finished(self, *, finished_before: dt.datetime, limit: int) -> int:
        old = [
            job_id
            for job_id, row in self._rows.items()
            if row.state in (JobState.SUCCEEDED, JobState.DELETED)
            and row.finished_at is not None
            and row.finished_at < finished_before
        ][:limit]
        for job_id in old:
            del self._rows[job_id]
        return len(old)

    # --- internals -----------------------------------------------------------------------
    def _claimed(self, job_id: JobId, token: UUID) -> _Row | None:
        row = self._rows.get(job_id)
        if row is None or row.state is not JobState.PROCESSING or row.token != token:
            return None
        return row

    def _save_output(self, row: _Row, output: Output) -> None:
        if output.progress is not None:
            row.progress = output.progress
        row.logs.extend(output.logs)

    def _move(
        self,
        row: _Row,
        to: JobState,
        now: dt.datetime,
        reason: str,
        data: dict[str, JSONValue] | None = None,
    ) -> None:
        """Apply one allowed transition and what follows from it."""
        states.check_transition(row.job.id, row.state, to)
        if row.state is JobState.PROCESSING:
            row.token = row.lease_until = row.server_id = None
        row.job = dataclasses.replace(row.job, state=to)
        row.finished_at = now if to.is_final else None
        if to is JobState.ENQUEUED:
            self._work.set()
        self._record(row, to, now, reason, data)
        if to.is_final:
            self._release_continuations(row.job.id, to, now)
            if row.job.batch_id is not None:
                self._release_batch(row.job.batch_id, now)

    def _record(
        self,
        row: _Row,
        state: JobState,
        now: dt.datetime,
        reason: str,
        data: dict[str, JSONValue] | None = None,
    ) -> None:
        row.history.append(Transition(state=state, at=now, reason=reason, data=data or {}))

    def _release_continuations(
        self, parent_id: JobId, parent_state: JobState, now: dt.datetime
    ) -> None:
        for child in self._awaiting(r for r in self._rows.values() if r.job.parent_id == parent_id):
            released = states.continuation_release(parent_state, child.job.continue_on)
            if released is not None:
                self._move(child, released[0], now, released[1])

    def _release_batch(self, batch_id: BatchId, now: dt.datetime) -> None:
        batch = self._batches.get(batch_id)
        if batch is None or batch.continuation_id is None:
            return
        continuation = self._rows[batch.continuation_id]
        if continuation.state is not JobState.AWAITING:
            return
        released = states.batch_release(self._batch_states(batch), batch.continue_on)
        if released is not None:
            self._move(continuation, released[0], now, released[1])

    def _batch_states(self, batch: _Batch) -> list[JobState]:
        """States of the batch's jobs that are still stored (finished ones may be purged)."""
        return [self._rows[job_id].state for job_id in batch.job_ids if job_id in self._rows]

    @staticmethod
    def _awaiting(rows: Iterable[_Row]) -> list[_Row]:
        return [row for row in rows if row.state is JobState.AWAITING]


def _summary(row: _Row) -> JobSummary:
    job = row.job
    return JobSummary(
        id=job.id,
        handler=job.handler,
        queue=job.queue,
        state=job.state,
        created_at=job.created_at,
        state_at=row.history[-1].at,
        run_at=job.run_at,
        attempt=job.attempt,
        progress=row.progress,
        error_type=None if row.error is None else row.error.type,
        recurring_id=job.recurring_id,
    )


def _matches(job: Job, where: JobFilter) -> bool:
    checks = (
        not where.states or job.state in where.states,
        where.queue is None or job.queue == where.queue,
        where.handler is None or job.handler == where.handler,
        where.recurring_id is None or job.recurring_id == where.recurring_id,
        where.parent_id is None or job.parent_id == where.parent_id,
        where.created_from is None or job.created_at >= where.created_from,
        where.created_to is None or job.created_at < where.created_to,
        not where.text or where.text in _arguments_json(job),
        not where.retries or (job.state is JobState.SCHEDULED and job.attempt > 0),
    )
    return all(checks)


def _arguments_json(job: Job) -> str:
    """The arguments as the SQL store keeps them, so a text filter matches the same jobs."""
    return json.dumps({"args": job.args, "kwargs": job.kwargs}, separators=(",", ":"))
