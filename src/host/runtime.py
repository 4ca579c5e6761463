"""The service's lifecycle inside one process: prepare the job backend's storage and the
business tables, declare
recurring jobs, run the backend's loops (worker, scheduler, housekeeping), stop them
gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from host.container import Container
from infrastructure.jobs.backend import JobBackend, Role
from infrastructure.persistence.sql.lifecycle import MemoryPersistence, SqlPersistence

logger = logging.getLogger(__name__)

BOOT_RETRY_SECONDS = 5.0


class JobRuntime:
    """Boots in the background (so health endpoints answer meanwhile), then runs the loops
    of its roles until `stop`."""

    def __init__(self, container: Container, roles: frozenset[Role]) -> None:
        self._container = container
        self._roles = roles
        self._stopping = asyncio.Event()
        self._boot: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._boot_error: str | None = None

    @property
    def running(self) -> bool:
        return bool(self._loops) and not any(task.done() for task in self._loops)

    @property
    def _backend(self) -> JobBackend:
        backend: JobBackend = self._container.backend()
        return backend

    def start(self) -> None:
        self._boot = asyncio.create_task(self._start_loops())

    @property
    def _persistence(self) -> SqlPersistence | MemoryPersistence:
        persistence: SqlPersistence | MemoryPersistence = self._container.persistence()
        return persistence

    async def stop(self) -> None:
        self._stopping.set()
        if self._boot is not None:
            # Not cancelled: a step running in a thread would go on with a connection of
            # the engine that is disposed next. Boot stops between steps instead.
            await self._boot
        for outcome in await asyncio.gather(*self._loops, return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error("a job loop failed", exc_info=outcome)
        await self._backend.close()
        await self._persistence.close()

    async def ready(self) -> str | None:
        """None when ready to serve, else why not."""
        if (problem := await self._backend.problem()) is not None:
            return problem
        if (problem := await self._backend.delivery_problem()) is not None:
            return problem
        if (problem := await self._persistence.problem()) is not None:
            return problem
        if not self.running:
            return self._boot_error or "job runtime starting"
        return None

    async def _start_loops(self) -> None:
        while True:
            try:
                if await self._backend.prepare(self._stopping):
                    return
                if await self._persistence.prepare(self._stopping):
                    return
                await self._container.registrar().register()
                break
            except Exception as exc:
                self._boot_error = f"start-up failed: {exc}"
                logger.exception("start-up failed; retrying", extra={"action": "startup_failed"})
                if await self._stopped_within(BOOT_RETRY_SECONDS):
                    return
        self._boot_error = None
        if self._stopping.is_set():
            return
        loops = self._backend.loops(self._roles)
        self._loops = [asyncio.create_task(loop(self._stopping)) for loop in loops]
        logger.info("job runtime started: %s", ", ".join(sorted(self._roles)) or "watchdog only")

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()
