"""The service's lifecycle inside one process: prepare the schema, declare recurring jobs,
run the job engine's loops (worker, scheduler, watchdog), stop them gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from host.container import Container
from host.settings import Settings
from infrastructure.jobs.sql import migrate

logger = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]

SCHEMA_POLL_SECONDS = 2.0
BOOT_RETRY_SECONDS = 5.0


class Role(enum.StrEnum):
    WORKER = "worker"
    SCHEDULER = "scheduler"


class JobRuntime:
    """Boots in the background (so health endpoints answer meanwhile), then runs the loops
    of its roles until `stop`."""

    def __init__(self, container: Container, roles: frozenset[Role]) -> None:
        self._container = container
        self._settings: Settings = container.settings()
        self._roles = roles
        self._stopping = asyncio.Event()
        self._boot: asyncio.Task[None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._boot_error: str | None = None

    @property
    def running(self) -> bool:
        return bool(self._loops) and not any(task.done() for task in self._loops)

    def start(self) -> None:
        self._boot = asyncio.create_task(self._start_loops())

    async def stop(self) -> None:
        self._stopping.set()
        if self._boot is not None:
            # Not cancelled: a step running in a thread would go on with a connection of
            # the engine that is disposed next. Boot stops between steps instead.
            await self._boot
        for outcome in await asyncio.gather(*self._loops, return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error("a job loop failed", exc_info=outcome)
        await self._container.job_store().close()

    async def ready(self) -> str | None:
        """None when ready to serve, else why not."""
        if self._settings.jobs.backend == "sql" and not await self._schema_at_head():
            return "database unreachable or schema not at head"
        if not self.running:
            return self._boot_error or "job runtime starting"
        return None

    async def _start_loops(self) -> None:
        while True:
            try:
                if await self._prepare_schema():
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
        loops: list[Loop] = [self._container.watchdog().run]
        if Role.WORKER in self._roles:
            loops.append(self._container.worker().run)
        if Role.SCHEDULER in self._roles:
            loops.append(self._container.scheduler().run)
        self._loops = [asyncio.create_task(loop(self._stopping)) for loop in loops]
        logger.info("job runtime started: %s", ", ".join(sorted(self._roles)) or "watchdog only")

    async def _prepare_schema(self) -> bool:
        """Migrate, or wait for another process to; True when stopped meanwhile."""
        if self._settings.jobs.backend != "sql":
            return False
        if self._settings.db.migrate_on_start:
            await asyncio.to_thread(self._migrate)
            return False
        while not await self._schema_at_head():
            logger.warning("waiting for the schema to be migrated to head")
            if await self._stopped_within(SCHEMA_POLL_SECONDS):
                return True
        return False

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def _migrate(self) -> None:
        db = self._settings.db
        migrate.upgrade(
            self._container.db_engine(),
            schema=db.schema_name,
            prefix=db.table_prefix,
            timeout=db.migration_lock_timeout_seconds,
        )

    async def _schema_at_head(self) -> bool:
        db = self._settings.db
        try:
            return await asyncio.to_thread(
                migrate.is_at_head,
                self._container.db_engine(),
                schema=db.schema_name,
                prefix=db.table_prefix,
            )
        except Exception:
            logger.warning("schema check failed", exc_info=True)
            return False
