"""The scheduler: enqueues scheduled jobs that are due and turns recurring ticks into jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from application.jobs import Cron, Misfire
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.cron import iter_fires, next_fire
from infrastructure.jobs.engine.middleware import Enqueue, Middlewares
from infrastructure.jobs.engine.model import Job, RecurringJob, Tick, UnloadableRecurring
from infrastructure.jobs.engine.store import JobSchedule

logger = logging.getLogger(__name__)

_INSTANT = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class TickPlan:
    """The ticks one round fires for a recurring job, and where its schedule goes next."""

    fire_times: list[dt.datetime]
    next_run_at: dt.datetime | None


def plan_ticks(
    cron: Cron, first_due: dt.datetime, now: dt.datetime, *, limit: int = 500
) -> TickPlan:
    """The fire times in `[first_due, now]` that get a job, oldest first, by misfire policy.

    Ticks at most `grace` late always run; of the older (missed) ones `run_once` keeps the
    latest, `run_all` the latest `limit`, `skip` none. At most `limit` ticks are planned in
    one round (an every-second schedule after a long downtime): the schedule then moves to
    the first tick left over, and the next round plans again from there by the same policy.
    """
    on_time_from = max(first_due, now - cron.misfire.grace)
    planned = _missed_ticks_kept(cron, first_due, on_time_from)
    for fire_at in iter_fires(cron, on_time_from - _INSTANT):
        if fire_at > now or len(planned) > limit:
            break
        planned.append(fire_at)
    if len(planned) > limit:
        return TickPlan(planned[:limit], next_run_at=planned[limit])
    return TickPlan(planned, next_run_at=next_fire(cron, now))


def _missed_ticks_kept(
    cron: Cron, first_due: dt.datetime, on_time_from: dt.datetime
) -> list[dt.datetime]:
    """The missed ticks (before `on_time_from`) the misfire policy keeps, oldest first."""
    policy = cron.misfire
    keep = {Misfire.RUN_ONCE: 1, Misfire.RUN_ALL: policy.limit, Misfire.SKIP: 0}[policy.kind]
    kept: list[dt.datetime] = []
    if keep and first_due < on_time_from:
        for fire_at in iter_fires(cron, on_time_from, backwards=True):
            if fire_at < first_due or len(kept) == keep:
                break
            kept.append(fire_at)
    return kept[::-1]


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
        self._flagged: dict[str, dt.datetime | None] = {}

    async def tick(self) -> int:
        """One round at the clock's current time; returns how many jobs it enqueued or created.

        A recurring job that cannot be read or fired is logged (once per due time) and left
        as it is, and the round goes on with the others."""
        now = self._clock.now()
        count = await self._store.enqueue_due(now=now, limit=self._batch_size)
        for definition in await self._store.due_recurring(now=now, limit=self._batch_size):
            if isinstance(definition, UnloadableRecurring):
                self._flag(definition.id, definition.next_run_at, definition.error)
                continue
            try:
                count += await self._fire(definition, now)
            except Exception as exc:
                self._flag(definition.id, definition.next_run_at, repr(exc), failed=exc)
        return count

    def _flag(
        self,
        recurring_id: str,
        next_run_at: dt.datetime | None,
        reason: str,
        *,
        failed: Exception | None = None,
    ) -> None:
        """Log a recurring job this round skipped; once per due time, not every round."""
        if self._flagged.get(recurring_id) == next_run_at:
            return
        self._flagged[recurring_id] = next_run_at
        logger.error(
            "recurring job %s skipped on this server: %s",
            recurring_id,
            reason,
            exc_info=failed,
            extra={
                "action": "recurring_unloadable" if failed is None else "recurring_fire_failed",
                "recurring_id": recurring_id,
            },
        )

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
        plan = plan_ticks(definition.cron, definition.next_run_at, now, limit=self._batch_size)
        fire_times = plan.fire_times
        jobs = [
            definition.new_job(now, reason=f"recurring tick {t:%Y-%m-%dT%H:%M:%SZ}")
            for t in fire_times
        ]
        enqueue = Enqueue("tick", jobs, fire_times)

        async def write(jobs: list[Job]) -> list[bool]:
            recorded = await self._store.record_ticks(
                definition.id,
                expected_next_run=definition.next_run_at,
                next_run_at=plan.next_run_at,
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
