"""The lifecycle verbs of the store port, written once over a store's `Transaction`."""

from __future__ import annotations

import abc
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import TypeVar
from uuid import UUID

from application.jobs import JobId, JobState
from infrastructure.jobs.engine import lifecycle, running, upkeep
from infrastructure.jobs.engine.model import (
    BulkMove,
    Claim,
    Elect,
    Finish,
    Job,
    NewBatch,
    Output,
    RecurringJob,
    Tick,
    keep,
)
from infrastructure.jobs.engine.transaction import Transaction
from infrastructure.jobs.signal import Broadcast

T = TypeVar("T")


class TransactionalStore(abc.ABC):
    """The lifecycle verbs of the store port (`store.JobStore`), each one transaction of
    `lifecycle`. A store provides `transaction` (and the reads and housekeeping, which have
    no rules); it may replace a hot verb by a faster one of its own that does the same."""

    @abc.abstractmethod
    async def transaction(
        self, work: Callable[[Transaction], T], *, session: object | None = None
    ) -> T:
        """Run `work` in one transaction: the caller's `session` if given, else its own."""

    @functools.cached_property
    def job_changes(self) -> Broadcast:
        """Notified after this process moved jobs (finished, deleted, requeued, rescued)."""
        return Broadcast()

    async def _changing(self, work: Callable[[Transaction], T]) -> T:
        """`transaction` for work that moves jobs, notifying `job_changes` after it."""
        try:
            return await self.transaction(work)
        finally:
            self.job_changes.notify()

    async def create(
        self,
        jobs: Sequence[Job],
        *,
        now: dt.datetime,
        batch: NewBatch | None = None,
        session: object | None = None,
    ) -> list[JobId]:
        return await self.transaction(
            lambda tx: lifecycle.create(tx, jobs, now, batch), session=session
        )

    async def change_state(
        self,
        job_id: JobId,
        to: JobState,
        *,
        now: dt.datetime,
        reason: str,
        unless: frozenset[JobState] = frozenset(),
        elect: Elect = keep,
    ) -> JobState:
        return await self._changing(
            lambda tx: lifecycle.change_state(
                tx, job_id, to, now, reason=reason, unless=unless, elect=elect
            )
        )

    async def change_states(
        self,
        job_ids: Sequence[JobId],
        to: JobState,
        *,
        now: dt.datetime,
        reason: str,
        unless: frozenset[JobState] = frozenset(),
        elect: Elect = keep,
    ) -> BulkMove:
        return await self._changing(
            lambda tx: lifecycle.change_states(
                tx, job_ids, to, now, reason=reason, unless=unless, elect=elect
            )
        )

    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        return await self.transaction(
            lambda tx: running.acquire(
                tx, queues, now, lease=lease, limit=limit, server_id=server_id
            )
        )

    async def extend(
        self,
        tokens: Sequence[tuple[JobId, UUID, Output]],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
    ) -> set[JobId]:
        return await self.transaction(lambda tx: running.extend(tx, tokens, now, lease))

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        return await self._changing(lambda tx: running.finish(tx, results, now))

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        await self.transaction(lambda tx: running.release(tx, claims, now, reason))

    async def enqueue_due(self, *, now: dt.datetime, limit: int) -> int:
        return await self.transaction(lambda tx: upkeep.enqueue_due(tx, now, limit))

    async def expire_overdue(self, *, now: dt.datetime, limit: int) -> int:
        return await self._changing(lambda tx: upkeep.expire_overdue(tx, now, limit))

    async def rescue_expired(self, *, now: dt.datetime, limit: int, elect: Elect = keep) -> int:
        return await self._changing(lambda tx: upkeep.rescue_expired(tx, now, limit, elect))

    async def upsert_recurring(self, definition: RecurringJob) -> None:
        await self.transaction(lambda tx: upkeep.upsert_recurring(tx, definition))

    async def record_ticks(
        self,
        recurring_id: str,
        *,
        expected_next_run: dt.datetime | None,
        next_run_at: dt.datetime | None,
        ticks: Sequence[Tick],
        now: dt.datetime,
    ) -> bool:
        return await self.transaction(
            lambda tx: upkeep.record_ticks(
                tx,
                recurring_id,
                expected_next_run=expected_next_run,
                next_run_at=next_run_at,
                ticks=ticks,
                now=now,
            )
        )
