"""Housekeeping every live server does: rescue expired leases, delete jobs past their deadline,
drop dead servers, purge old jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from application.jobs import JobState
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.middleware import Middlewares
from infrastructure.jobs.engine.model import ServerInfo
from infrastructure.jobs.engine.store import Housekeeping

logger = logging.getLogger(__name__)

Purge = Callable[[int], Awaitable[int]]
"""Deletes up to so many expired rows of one kind; returns how many it deleted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchdogSettings:
    """Attributes:
    interval: seconds between rounds.
    server_timeout: a server whose last heartbeat is older is removed as dead.
    retention: succeeded and deleted jobs are purged this long after they finished, and a
        batch this long after it was created once none of its jobs is left.
    failed_retention: failed jobs are purged this long after they failed (kept longer: an
        operator may still requeue them).
    tick_retention: rows of the tick ledger are purged this long after their fire time (the
        compare-and-set on the next run keeps each tick once beyond it; the ledger only
        guards replicas acting on a schedule read moments ago).
    chunk: rows per purge or rescue statement.
    max_chunks: purge statements per round at most, per kind of row.
    queue_check_interval, unserved_warning_interval: see below.
    """

    interval: float = 5.0
    server_timeout: dt.timedelta = dt.timedelta(minutes=1)
    retention: dt.timedelta = dt.timedelta(days=7)
    failed_retention: dt.timedelta = dt.timedelta(days=30)
    tick_retention: dt.timedelta = dt.timedelta(days=1)
    chunk: int = 1000
    max_chunks: int = 50
    queue_check_interval: dt.timedelta = dt.timedelta(minutes=1)
    """How often enqueued jobs on queues no live server serves are looked for (the first
    look one interval after start, once the servers have had time to beat)."""
    unserved_warning_interval: dt.timedelta = dt.timedelta(minutes=10)
    """How often such a queue is warned about again while it stays unserved."""


class WatchedStore(Housekeeping, Protocol):
    """What the watchdog reads besides its housekeeping: where jobs wait, who serves."""

    async def queue_lengths(self) -> dict[str, tuple[int, dt.datetime]]: ...

    async def list_servers(self) -> list[ServerInfo]: ...


class Watchdog:
    def __init__(
        self,
        store: WatchedStore,
        clock: Clock,
        settings: WatchdogSettings | None = None,
        *,
        middleware: Middlewares | None = None,
    ) -> None:
        self._store = store
        self._middleware = middleware or Middlewares()
        self._clock = clock
        self.settings = settings or WatchdogSettings()
        self._next_queue_check = clock.now() + self.settings.queue_check_interval
        self._warned: dict[str, dt.datetime] = {}

    async def tick(self) -> None:
        now = self._clock.now()
        rescued = await self._store.rescue_expired(
            now=now, limit=self.settings.chunk, elect=self._middleware.elect_move
        )
        if rescued:
            logger.warning(
                "rescued %d job(s) whose lease expired", rescued, extra={"action": "jobs_rescued"}
            )
        expired = await self._store.expire_overdue(now=now, limit=self.settings.chunk)
        if expired:
            logger.info(
                "deleted %d job(s) past their deadline", expired, extra={"action": "jobs_expired"}
            )
        dead = await self._store.remove_dead_servers(
            heartbeat_before=now - self.settings.server_timeout
        )
        for server_id in dead:
            logger.warning(
                "removed dead server %s",
                server_id,
                extra={"action": "server_removed", "server_id": server_id},
            )
        await self._purge_expired(now)
        if now >= self._next_queue_check:
            self._next_queue_check = now + self.settings.queue_check_interval
            await self._warn_of_unserved_queues(now)

    async def _warn_of_unserved_queues(self, now: dt.datetime) -> None:
        """Log the queues holding enqueued jobs that no live server serves: they wait for
        ever, which is most often a queue name one side spells differently."""
        served = {queue for server in await self._store.list_servers() for queue in server.queues}
        waiting = await self._store.queue_lengths()
        unserved = {queue: counts for queue, counts in waiting.items() if queue not in served}
        self._warned = {q: at for q, at in self._warned.items() if q in unserved}
        for queue, (count, oldest) in sorted(unserved.items()):
            last = self._warned.get(queue)
            if last is not None and now - last < self.settings.unserved_warning_interval:
                continue
            self._warned[queue] = now
            logger.warning(
                "%d job(s) wait on queue %r, which no live server serves (oldest enqueued at %s)",
                count,
                queue,
                oldest.isoformat(),
                extra={"action": "queue_unserved", "queue": queue, "jobs": count},
            )

    async def _purge_expired(self, now: dt.datetime) -> None:
        """Jobs first: a batch goes once its jobs are gone."""
        settings, store = self.settings, self._store
        finished_before = now - settings.retention
        failed_before = now - settings.failed_retention
        fired_before = now - settings.tick_retention

        async def failed(limit: int) -> int:
            return await store.purge_finished(
                finished_before=failed_before, limit=limit, states=frozenset({JobState.FAILED})
            )

        purges: list[tuple[str, Purge]] = [
            ("job(s)", lambda n: store.purge_finished(finished_before=finished_before, limit=n)),
            ("failed job(s)", failed),
            ("batch(es)", lambda n: store.purge_batches(created_before=finished_before, limit=n)),
            ("tick ledger row(s)", lambda n: store.purge_ticks(fired_before=fired_before, limit=n)),
        ]
        for what, purge in purges:
            await self._purge(what, purge)

    async def _purge(self, what: str, purge: Purge) -> None:
        """Delete expired rows chunk by chunk (short transactions, so workers are never
        blocked for long), up to `max_chunks` per round."""
        purged = 0
        for _ in range(self.settings.max_chunks):
            deleted = await purge(self.settings.chunk)
            purged += deleted
            if deleted < self.settings.chunk:
                break
        if purged:
            logger.info("purged %d expired %s", purged, what, extra={"action": "jobs_purged"})

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.tick()
            except Exception:
                logger.exception("watchdog round failed", extra={"action": "watchdog_failed"})
            try:
                await asyncio.wait_for(stopping.wait(), self.settings.interval)
            except TimeoutError:
                pass
