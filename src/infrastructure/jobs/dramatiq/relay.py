"""The relay: publishes the outbox's rows to the broker and marks them sent.

Every process of the dramatiq backend runs one. It publishes as soon as a transaction of its
own process enqueued jobs (and, on PostgreSQL, of any process), else at its poll interval.
While the broker is down it keeps the rows and retries with a growing pause, so enqueueing
never fails because of the broker, and the backlog drains once it is back. Now and then it
publishes again the messages of jobs still enqueued long after their message went out: the
broker may have lost them (restarted without persistence).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from infrastructure.jobs.clock import Clock
from infrastructure.jobs.dramatiq.outbox import OutboxStore, Publish

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySettings:
    """Attributes:
    batch: rows published per transaction.
    poll_interval: longest wait between rounds when nothing wakes the relay.
    max_backoff: longest pause between attempts while the broker fails.
    redeliver_after: a job still enqueued this long after its message went out gets
        another message.
    """

    batch: int = 500
    poll_interval: float = 1.0
    max_backoff: float = 5.0
    redeliver_after: dt.timedelta = dt.timedelta(minutes=5)


class Relay:
    def __init__(
        self,
        store: OutboxStore,
        publish: Publish,
        clock: Clock,
        settings: RelaySettings | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock
        self.settings = settings or RelaySettings()
        self._lock = asyncio.Lock()

    async def publish_pending(self) -> Counter[str]:
        """Publish every unsent row; return how many messages went to each queue.

        Raises:
            Exception: the broker or the database failed; the unpublished rows stay.
        """
        published: Counter[str] = Counter()
        async with self._lock:  # one round at a time in a process: no message sent twice
            while True:
                queues = await self._store.publish_pending(
                    self._publish, now=self._clock.now(), limit=self.settings.batch
                )
                published.update(queues)
                if len(queues) < self.settings.batch:
                    return published

    async def redeliver_stale(self) -> int:
        """Mark for publishing again the messages the broker may have lost."""
        now = self._clock.now()
        sent_before = now - self.settings.redeliver_after
        return await self._store.redeliver_stale(sent_before=sent_before, now=now)

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until `stopping` is set."""
        backoff = 0.0
        next_sweep = self._clock.now() + self.settings.redeliver_after
        while not stopping.is_set():
            try:
                if self._clock.now() >= next_sweep:
                    next_sweep = self._clock.now() + self.settings.redeliver_after
                    await self._sweep()
                published = await self.publish_pending()
                backoff = 0.0
                if published:
                    _log_published(published)
                    continue
                await self._wait(stopping, self.settings.poll_interval)
            except Exception:
                backoff = min(self.settings.max_backoff, max(0.1, backoff * 2))
                logger.warning(
                    "publishing the outbox failed; retrying in %.1f s",
                    backoff,
                    exc_info=True,
                    extra={"action": "outbox_publish_failed"},
                )
                await self._pause(stopping, backoff)

    async def _sweep(self) -> None:
        if redelivered := await self.redeliver_stale():
            logger.warning(
                "%d job(s) still enqueued long after their message: publishing again",
                redelivered,
                extra={"action": "messages_redelivered"},
            )

    async def _wait(self, stopping: asyncio.Event, seconds: float) -> None:
        """Until this process (or, on PostgreSQL, any) enqueues jobs, or `seconds`."""
        waking = asyncio.create_task(self._store.wait_for_work(seconds))
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({waking, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waking, stop):
            task.cancel()

    async def _pause(self, stopping: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)


def _log_published(published: Counter[str]) -> None:
    logger.debug(
        "published %d message(s)",
        sum(published.values()),
        extra={"action": "outbox_published", "queues": dict(published)},
    )
