"""Housekeeping every live server does: rescue expired leases, drop dead servers, purge old jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.middleware import Middlewares
from infrastructure.jobs.engine.store import Housekeeping

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchdogSettings:
    """Attributes:
    interval: seconds between rounds.
    server_timeout: a server whose last heartbeat is older is removed as dead.
    retention: succeeded and deleted jobs are purged this long after they finished.
    chunk: rows per purge or rescue statement.
    max_chunks: purge statements per round at most.
    """

    interval: float = 5.0
    server_timeout: dt.timedelta = dt.timedelta(minutes=1)
    retention: dt.timedelta = dt.timedelta(days=7)
    chunk: int = 1000
    max_chunks: int = 50


class Watchdog:
    def __init__(
        self,
        store: Housekeeping,
        clock: Clock,
        settings: WatchdogSettings | None = None,
        *,
        middleware: Middlewares | None = None,
    ) -> None:
        self._store = store
        self._middleware = middleware or Middlewares()
        self._clock = clock
        self.settings = settings or WatchdogSettings()

    async def tick(self) -> None:
        now = self._clock.now()
        rescued = await self._store.rescue_expired(
            now=now, limit=self.settings.chunk, elect=self._middleware.elect_move
        )
        if rescued:
            logger.warning(
                "rescued %d job(s) whose lease expired", rescued, extra={"action": "jobs_rescued"}
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
        await self._purge(now - self.settings.retention)

    async def _purge(self, finished_before: dt.datetime) -> None:
        """Delete expired jobs chunk by chunk (short transactions, so workers are never
        blocked for long), up to `max_chunks` per round."""
        purged = 0
        for _ in range(self.settings.max_chunks):
            deleted = await self._store.purge_finished(
                finished_before=finished_before, limit=self.settings.chunk
            )
            purged += deleted
            if deleted < self.settings.chunk:
                break
        if purged:
            logger.info("purged %d expired job(s)", purged, extra={"action": "jobs_purged"})

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
