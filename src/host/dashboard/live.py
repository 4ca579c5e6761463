"""Live updates over server-sent events, fed by one shared read per interval.

However many pages are open, the feed reads the store once per interval: counts, queues and
servers while an overview is open, and one `pulses` read for every watched job together; a
job whose pulse moved is read once more in full, for all its pages. Each open page only
renders what the feed read, so it costs no query of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from application.jobs import (
    Explanation,
    JobAdmin,
    JobId,
    JobNotFound,
    JobPulse,
    JobService,
    JobStats,
    JobView,
    QueueView,
    ServerView,
)
from infrastructure.jobs.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDetail:
    view: JobView
    explanation: Explanation


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What one shared read found; `stats` is None while no overview is open."""

    at: dt.datetime
    stats: JobStats | None = None
    queues: list[QueueView] = field(default_factory=list)
    servers: list[ServerView] = field(default_factory=list)
    jobs: dict[JobId, JobDetail] = field(default_factory=dict)


Render = Callable[[Snapshot], Iterable[tuple[str, str]]]
"""Turns a snapshot into (event name, HTML) pairs for one page."""


class LiveFeed:
    def __init__(
        self,
        admin: JobAdmin,
        jobs: JobService,
        clock: Clock,
        *,
        interval: float,
        counts_interval: float,
    ) -> None:
        self._admin = admin
        self._jobs = jobs
        self._clock = clock
        self._interval = interval
        self._counts_interval = counts_interval
        self._overviews = 0
        self._watched: Counter[JobId] = Counter()
        self._pulses: dict[JobId, JobPulse] = {}
        self._details: dict[JobId, JobDetail] = {}
        self._snapshot = Snapshot(at=clock.now())
        self._version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stats: tuple[float, JobStats] | None = None
        self._stats_lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self.reads = 0
        """Shared reads done so far (for the benchmark: they do not grow with open pages)."""

    async def stream(self, job_id: JobId | None, render: Render) -> AsyncIterator[str]:
        """Server-sent events for one page: what `render` makes of each snapshot, each event
        sent again only when its HTML changed."""
        sent: dict[str, str] = {}
        async with self._watching(job_id):
            version = 0
            while True:
                version, snapshot = await self._next(version)
                for name, html in render(snapshot):
                    if sent.get(name) != html:
                        sent[name] = html
                        yield event(name, html)

    async def stats(self) -> JobStats:
        """Counts and outcomes of the last hour. Counting a large store by state is the
        dashboard's dearest read, so pages get the last counts at once and at most one read
        per `counts_interval` refreshes them in the background (only the very first read is
        waited for)."""
        if self._stats is None:
            async with self._stats_lock:
                if self._stats is None:
                    self._stats = (time.monotonic(), await self._admin.stats())
        read_at, stats = self._stats
        stale = time.monotonic() - read_at >= self._counts_interval
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._refresh_stats())
        return stats

    async def _refresh_stats(self) -> None:
        try:
            self._stats = (time.monotonic(), await self._admin.stats())
        except Exception:
            logger.warning("stats read failed", exc_info=True, extra={"action": "live_failed"})

    @asynccontextmanager
    async def _watching(self, job_id: JobId | None) -> AsyncIterator[None]:
        if job_id is None:
            self._overviews += 1
        else:
            self._watched[job_id] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            yield
        finally:
            if job_id is None:
                self._overviews -= 1
            else:
                self._watched[job_id] -= 1
                self._watched += Counter()  # drops the jobs nobody watches any more

    async def _next(self, seen: int) -> tuple[int, Snapshot]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._version > seen)
            return self._version, self._snapshot

    async def _run(self) -> None:
        while self._overviews or self._watched:
            try:
                snapshot = await self._read()
            except Exception:
                logger.warning("live read failed", exc_info=True, extra={"action": "live_failed"})
            else:
                async with self._changed:
                    self._snapshot, self._version = snapshot, self._version + 1
                    self._changed.notify_all()
            await asyncio.sleep(self._interval)

    async def _read(self) -> Snapshot:
        self.reads += 1
        snapshot = Snapshot(at=self._clock.now(), jobs=await self._read_jobs())
        if not self._overviews:
            return snapshot
        return Snapshot(
            at=snapshot.at,
            stats=await self.stats(),
            queues=await self._admin.queues(),
            servers=await self._admin.list_servers(),
            jobs=snapshot.jobs,
        )

    async def _read_jobs(self) -> dict[JobId, JobDetail]:
        watched = list(self._watched)
        pulses = await self._admin.pulses(watched) if watched else {}
        for job_id in watched:
            moved = pulses.get(job_id) != self._pulses.get(job_id)
            if job_id in pulses and (moved or job_id not in self._details):
                await self._read_detail(job_id)
        self._pulses = pulses
        self._details = {i: d for i, d in self._details.items() if i in pulses}
        return dict(self._details)

    async def _read_detail(self, job_id: JobId) -> None:
        try:
            view = await self._jobs.get(job_id)
            explanation = await self._admin.explain(job_id)
        except JobNotFound:  # purged meanwhile
            return
        self._details[job_id] = JobDetail(view=view, explanation=explanation)


def event(name: str, data: str) -> str:
    """One server-sent event; each line of `data` gets its own `data:` field."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"
