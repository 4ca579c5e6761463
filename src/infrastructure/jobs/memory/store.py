"""`InMemoryJobStore`: the store port in process memory (tests, experiments, one process)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

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
from infrastructure.jobs.engine.model import (
    Job,
    RecurringJob,
    ServerInfo,
    UnloadableRecurring,
    as_in_arguments_json,
)
from infrastructure.jobs.engine.storage import TransactionalStore
from infrastructure.jobs.engine.store import PURGED_STATES
from infrastructure.jobs.engine.transaction import Transaction
from infrastructure.jobs.engine.views import SORTS, job_view
from infrastructure.jobs.memory.transaction import Data, MemoryTransaction, Row
from infrastructure.jobs.signal import Signal

T = TypeVar("T")

_OUTCOMES = (JobState.SUCCEEDED, JobState.FAILED)
_MINUTE = dt.timedelta(minutes=1)


class InMemoryJobStore(TransactionalStore):
    def __init__(self) -> None:
        self._data = Data()
        self._work = Signal()
        self._writing = threading.Lock()
        """A transaction runs without awaiting, so it is atomic on one loop; the lock keeps it
        so when the port runs on a loop of its own (the synchronous port)."""

    async def transaction(
        self, work: Callable[[Transaction], T], *, session: object | None = None
    ) -> T:
        tx = MemoryTransaction(self._data)
        with self._writing:
            result = work(tx)
        if tx.woke:
            self._work.notify()
        return result

    async def wait_for_work(self, max_seconds: float) -> None:
        await self._work.wait(max_seconds)

    async def close(self) -> None:
        return None

    # --- reading jobs --------------------------------------------------------------------
    async def get(self, job_id: JobId) -> JobView | None:
        row = self._data.rows.get(job_id)
        if row is None:
            return None
        return job_view(
            row.job,
            history=row.history,
            logs=row.logs,
            error=row.error,
            progress=row.progress,
            result=row.result,
        )

    async def get_batch(self, batch_id: BatchId) -> BatchView | None:
        batch = self._data.batches.get(batch_id)
        if batch is None:
            return None
        counts = dict.fromkeys(JobState, 0)
        for state in MemoryTransaction(self._data).batch_states(batch_id, None):
            counts[state] += 1
        return BatchView(
            id=batch_id,
            total=len(batch.job_ids),
            counts=counts,
            continuation_id=batch.continuation_id,
        )

    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort,
        limit: int,
        after: tuple[dt.datetime, JobId] | None = None,
    ) -> list[JobSummary]:
        field_name, descending = SORTS[sort]

        def key(summary: JobSummary) -> tuple[dt.datetime, JobId]:
            return getattr(summary, field_name), summary.id

        found = [_summary(row) for row in self._data.rows.values() if _matches(row.job, where)]
        found.sort(key=key, reverse=descending)
        if after is not None:
            found = [s for s in found if (key(s) < after if descending else key(s) > after)]
        return found[:limit]

    async def count_jobs(self, where: JobFilter) -> int:
        return sum(1 for row in self._data.rows.values() if _matches(row.job, where))

    async def count_by_state(self) -> dict[JobState, int]:
        return dict(Counter(row.state for row in self._data.rows.values()))

    async def finished_per_minute(
        self, *, since: dt.datetime, until: dt.datetime
    ) -> list[MinuteCount]:
        counts = Counter(
            ((t.at - since) // _MINUTE, t.state)
            for row in self._data.rows.values()
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
        for row in self._enqueued():
            count, oldest = lengths.get(row.job.queue, (0, row.state_at))
            lengths[row.job.queue] = (count + 1, min(oldest, row.state_at))
        return lengths

    async def running_by_server(self) -> dict[str, int]:
        rows = self._data.rows.values()
        return dict(Counter(r.server_id for r in rows if r.server_id is not None))

    async def enqueued_ahead(self, queue: str, *, before: dt.datetime) -> int:
        return sum(1 for r in self._enqueued() if r.job.queue == queue and r.state_at < before)

    async def list_batches(self, limit: int) -> list[BatchView]:
        newest = list(reversed(self._data.batches))[:limit]  # dicts keep the order of creation
        return [view for batch_id in newest if (view := await self.get_batch(batch_id))]

    async def pulses(self, job_ids: Sequence[JobId]) -> dict[JobId, JobPulse]:
        return {
            job_id: JobPulse(
                state=row.state,
                state_at=row.state_at,
                progress=row.progress,
                log_lines=len(row.logs),
            )
            for job_id in job_ids
            if (row := self._data.rows.get(job_id)) is not None
        }

    def _enqueued(self) -> list[Row]:
        return [row for row in self._data.rows.values() if row.state is JobState.ENQUEUED]

    # --- recurring jobs ------------------------------------------------------------------
    async def remove_recurring(self, recurring_id: str) -> bool:
        ledger = self._data.ledger
        ledger.difference_update({tick for tick in ledger if tick[0] == recurring_id})
        return self._data.recurring.pop(recurring_id, None) is not None

    async def set_recurring_paused(
        self, recurring_id: str, paused: bool, *, next_run_at: dt.datetime | None
    ) -> bool:
        stored = self._data.recurring.get(recurring_id)
        if stored is None:
            return False
        changed = dataclasses.replace(stored, paused=paused, next_run_at=next_run_at)
        self._data.recurring[recurring_id] = changed
        return True

    async def get_recurring(self, recurring_id: str) -> RecurringJob | None:
        return self._data.recurring.get(recurring_id)

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringJob]:
        ids = [key for key in sorted(self._data.recurring) if after is None or key > after]
        return [self._data.recurring[key] for key in ids[:limit]]

    async def due_recurring(
        self, *, now: dt.datetime, limit: int
    ) -> list[RecurringJob | UnloadableRecurring]:
        due: list[RecurringJob | UnloadableRecurring] = [
            r
            for r in self._data.recurring.values()
            if not r.paused and r.next_run_at is not None and r.next_run_at <= now
        ]
        return sorted(due, key=lambda r: r.next_run_at or now)[:limit]

    # --- servers and retention -----------------------------------------------------------
    async def heartbeat(self, server: ServerInfo) -> None:
        self._data.servers[server.id] = server

    async def remove_server(self, server_id: str) -> None:
        self._data.servers.pop(server_id, None)

    async def remove_dead_servers(self, *, heartbeat_before: dt.datetime) -> list[str]:
        servers = self._data.servers
        dead = [s.id for s in servers.values() if s.heartbeat_at < heartbeat_before]
        for server_id in dead:
            del servers[server_id]
        return dead

    async def list_servers(self) -> list[ServerInfo]:
        return sorted(self._data.servers.values(), key=lambda s: s.id)

    async def purge_finished(
        self,
        *,
        finished_before: dt.datetime,
        limit: int,
        states: frozenset[JobState] = PURGED_STATES,
    ) -> int:
        old = [
            job_id
            for job_id, row in self._data.rows.items()
            if row.state in states and row.state_at < finished_before
        ][:limit]
        for job_id in old:
            del self._data.rows[job_id]
        requests = self._data.requests
        for key in [k for k, (_, _, at) in requests.items() if at < finished_before][:limit]:
            del requests[key]  # idempotency keys expire with the retention period
        return len(old)

    async def purge_ticks(self, *, fired_before: dt.datetime, limit: int) -> int:
        old = [tick for tick in self._data.ledger if tick[1] < fired_before][:limit]
        self._data.ledger.difference_update(old)
        return len(old)

    async def purge_batches(self, *, created_before: dt.datetime, limit: int) -> int:
        live = {row.job.batch_id for row in self._data.rows.values()} | self._data.rows.keys()
        old = [
            batch_id
            for batch_id, batch in self._data.batches.items()
            if batch.created_at < created_before
            and batch_id not in live
            and batch.continuation_id not in live
        ][:limit]
        for batch_id in old:
            del self._data.batches[batch_id]
        return len(old)


def _summary(row: Row) -> JobSummary:
    job = row.job
    return JobSummary(
        id=job.id,
        handler=job.handler,
        queue=job.queue,
        state=job.state,
        created_at=job.created_at,
        state_at=row.state_at,
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
        not where.text or as_in_arguments_json(where.text) in _arguments_json(job),
        not where.retries or (job.state is JobState.SCHEDULED and job.attempt > 0),
    )
    return all(checks)


def _arguments_json(job: Job) -> str:
    """The arguments as the SQL store keeps them, so a text filter matches the same jobs."""
    return json.dumps({"args": job.args, "kwargs": job.kwargs}, separators=(",", ":"))
