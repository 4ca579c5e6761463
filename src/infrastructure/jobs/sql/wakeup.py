"""Waking idle workers as soon as jobs are enqueued.

Within a process an event is set after every write that may enqueue jobs. On PostgreSQL,
writes also `NOTIFY`, and a listening connection wakes the workers of every other process.
Other databases fall back to polling at the worker's interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import sqlalchemy as sa

from infrastructure.jobs.signal import Signal

logger = logging.getLogger(__name__)

CHANNEL = "jobs_enqueued"
RECONNECT_SECONDS = 2.0
MAX_RECONNECT_SECONDS = 16.0
"""The LISTEN connection retries after RECONNECT_SECONDS, doubling while the database stays
unreachable, up to this (workers poll meanwhile)."""


class Wakeup:
    def __init__(self, database: sa.Engine) -> None:
        self._event = Signal()
        self._listen_url = _psycopg_url(database)
        self._listener: asyncio.Task[None] | None = None

    def notify_local(self) -> None:
        self._event.notify()

    async def wait(self, max_seconds: float) -> None:
        if self._listen_url is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(self._listen_url))
        await self._event.wait(max_seconds)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self, url: str) -> None:
        import psycopg

        delay = RECONNECT_SECONDS
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = RECONNECT_SECONDS
                    self._event.notify()  # jobs may have come while we were not listening
                    async for _ in conn.notifies():
                        self._event.notify()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "LISTEN connection lost; reconnecting in %.0f s", delay, exc_info=True
                )
                await asyncio.sleep(delay)
                delay = min(MAX_RECONNECT_SECONDS, delay * 2)


def _psycopg_url(database: sa.Engine) -> str | None:
    url = database.url
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
