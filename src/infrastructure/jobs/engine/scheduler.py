"""The scheduler: enqueues scheduled jobs that are due and turns recurring ticks into jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from application.jobs import Cron, Misfire
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.cron import iter_fires, next_fire
from infrastructure.jobs.engine.middleware import Enqueue, Middlewares
from infrastructure.jobs.engine.model import Job, RecurringJob, Tick
from infrastructure.jobs.engine.store import JobSchedule

logger = logging.getLogger(__name__)

_INSTANT = dt.timedelta(microseconds=1)


def plan_ticks(cron: Cron, first_due: dt.datetime, now: dt.datetime) -> list[dt.datetime]:
    """The fire times in `[first_due, now]` that get a job, oldest first, by misfire policy.

    Ticks at most `grace` late always run; of the older (missed) ones `run_once` keeps the
    latest, `run_all` the latest `limit`, `skip` none.
    """
    policy = cron.misfire
    keep_missed = {Misfire.RUN_ONCE: 1, Misfire.RUN_ALL: policy.limit, Misfire.SKIP: 0}[policy.kind]
    on_time: list[dt.datetime] = []
    missed: list[dt.datetime] = []
    for fire_at in iter_fires(cron, now + _INSTANT, backwards=True):
        if fire_at < first_due:
            break
        if now - fire_at <= policy.grace:
            on_time.append(fire_at)
        elif len(missed) < keep_missed:
            missed.append(fire_at)
        else:
            break
    return sorted(missed + on_time)


class Scheduler:
    """Moves due scheduled jobs to their queue and fires recurring jobs, exactly once each
    tick across replicas (compare-and-set in the store)."""

    def __init__(
        self,
        store: JobSchedule,
        clock: Clock,
        *,
        poll_interval: float = 1.0,
        batch_size: int = 500,
        middleware: Middlewares | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._middleware = middleware or Middlewares()
        self._poll_interval = poll_interval
        self._batch_size = batch_size

    async def tick(self) -> int:
        """One round at the clock's current time; returns how many jobs it enqueued or created."""
        now = self._clock.now()
        count = await self._store.enqueue_due(now=now, limit=self._batch_size)
        for definition in await self._store.due_recurring(now=now, limit=self._batch_size):
            count += await self._fire(definition, now)
        return count

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until `stopping` is set; a failing round is logged and retried."""
        while not stopping.is_set():
            try:
                await self.tick()
            except Exception:
                logger.exception("scheduler round failed", extra={"action": "scheduler_failed"})
            try:
                await asyncio.wait_for(stopping.wait(), self._poll_interval)
            except TimeoutError:
                pass

    async def _fire(self, definition: RecurringJob, now: dt.datetime) -> int:
        assert definition.next_run_at is not None
        fire_times = plan_ticks(definition.cron, definition.next_run_at, now)
        jobs = [
            definition.new_job(now, reason=f"recurring tick {t:%Y-%m-%dT%H:%M:%SZ}")
            for t in fire_times
        ]
        enqueue = Enqueue("tick", jobs, fire_times)

        async def write(jobs: list[Job]) -> list[bool]:
            recorded = await self._store.record_ticks(
                definition.id,
                expected_next_run=definition.next_run_at,
                next_run_at=next_fire(definition.cron, now),
                ticks=[Tick(fire_at=t, job=job) for t, job in zip(fire_times, jobs, strict=True)],
                now=now,
            )
            return [recorded] * len(jobs)

        await self._middleware.enqueuing(enqueue, write)
        if not all(enqueue.created):
            return 0  # another replica fired these ticks first
        skipped = "" if fire_times and fire_times[0] == definition.next_run_at else " (misfire)"
        logger.info(
            "recurring job %s fired %d tick(s)%s",
            definition.id,
            len(jobs),
            skipped,
            extra={"action": "recurring_fired", "recurring_id": definition.id},
        )
        return len(jobs)
