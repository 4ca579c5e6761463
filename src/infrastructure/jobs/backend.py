"""The plug-in seam of job adapters: a `JobBackend` gives the host its `JobService`, its
`JobAdmin`, the loops to run, how to prepare storage and why it is not ready.

The host picks one by name (`APP_JOBS__BACKEND`) and never asks which one it has. Adding an
adapter is a new package under `infrastructure/jobs/` with a backend class, plus one line in
`BUILT_IN` (or `register_backend` from code, or a `package.module:Class` name in the setting).
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import os
import socket
import uuid
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.jobs import JobAdmin, JobService
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.engine.admin import EngineJobAdmin
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor, HandlerFactory
from infrastructure.jobs.engine.middleware import JobMiddleware, Middlewares
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A long-running task of a backend; it returns soon after the event is set."""


class Role(enum.StrEnum):
    """What a process does besides serving the port (the watchdog always runs)."""

    WORKER = "worker"
    SCHEDULER = "scheduler"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConfig:
    """The service's database, where SQL-backed adapters keep jobs."""

    url: str
    schema: str | None = None
    """None: the adapter's default for the database."""
    table_prefix: str = ""
    migrate_on_start: bool = True
    migration_lock_timeout: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendContext:
    """What the host hands every backend."""

    registry: HandlerRegistry
    handler_factory: HandlerFactory
    clock: Clock
    database: DatabaseConfig
    middleware: Sequence[JobMiddleware] = ()
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    scheduler_poll_seconds: float = 1.0
    payload_limit: int = 64 * 1024
    options: Mapping[str, str] = field(default_factory=dict)
    """The adapter's own settings (`APP_JOBS__OPTIONS__<NAME>`), e.g. a broker URL."""


class JobBackend(Protocol):
    @property
    def jobs(self) -> JobService:
        """The port application code calls."""

    @property
    def admin(self) -> JobAdmin:
        """The operators' port (REST API, CLI, dashboard)."""

    @property
    def shared(self) -> bool:
        """Whether other processes see the same jobs (separate workers, the CLI)."""

    def loops(self, roles: Collection[Role]) -> list[Loop]:
        """The tasks a process with these roles runs (housekeeping always)."""

    async def prepare(self, stopping: asyncio.Event) -> bool:
        """Make storage ready at start-up: migrate it, or wait until another process has.
        True when `stopping` was set meanwhile."""

    async def migrate(self) -> str:
        """Bring storage to the current version now; say which.

        Raises:
            BackendError: it could not be done (e.g. another migration holds the lock).
        """

    async def problem(self) -> str | None:
        """Why storage cannot be used now (unreachable, not migrated), or None."""

    async def delivery_problem(self) -> str | None:
        """Why jobs stored now would not reach workers (e.g. a broker that cannot be
        reached), or None. Readiness checks it; commands that only touch storage do not."""

    async def close(self) -> None:
        """Release connections and listeners; the backend is unusable after."""


class EngineBackend:
    """A backend that is our engine over a store: the memory and SQL adapters."""

    shared = False

    def __init__(self, store: JobStore, context: BackendContext) -> None:
        self.store = store
        self.context = context
        self.middleware = Middlewares(context.middleware)
        self.jobs = EngineJobService(
            store,
            context.registry,
            context.clock,
            payload_limit=context.payload_limit,
            middleware=self.middleware,
        )
        self.admin = EngineJobAdmin(
            store,
            context.registry,
            self.jobs,
            context.clock,
            payload_limit=context.payload_limit,
            middleware=self.middleware,
        )
        self.executor = Executor(
            context.registry, context.handler_factory, threads=context.worker.concurrency
        )

    def worker(self, *, server_id: str | None = None) -> Worker:
        return Worker(
            self.store,
            self.executor,
            self.context.clock,
            server_id=server_id or default_server_id(),
            settings=self.context.worker,
            middleware=self.middleware,
        )

    def scheduler(self) -> Scheduler:
        return Scheduler(
            self.store,
            self.context.clock,
            poll_interval=self.context.scheduler_poll_seconds,
            middleware=self.middleware,
        )

    def watchdog(self) -> Watchdog:
        return Watchdog(
            self.store, self.context.clock, self.context.watchdog, middleware=self.middleware
        )

    def loops(self, roles: Collection[Role]) -> list[Loop]:
        loops: list[Loop] = [self.watchdog().run]
        if Role.WORKER in roles:
            loops.append(self.worker().run)
        if Role.SCHEDULER in roles:
            loops.append(self.scheduler().run)
        return loops

    async def prepare(self, stopping: asyncio.Event) -> bool:
        return False

    async def migrate(self) -> str:
        return "nothing to migrate"

    async def problem(self) -> str | None:
        return None

    async def delivery_problem(self) -> str | None:
        return None  # the store is the delivery

    async def close(self) -> None:
        self.executor.shutdown()
        await self.store.close()


def default_server_id() -> str:
    """Host, process and a random part: unique per worker, readable in the dashboard."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class BackendError(Exception):
    """A backend cannot do what was asked; the message says why, for an operator."""


BackendFactory = Callable[[BackendContext], JobBackend]

BUILT_IN: dict[str, str] = {
    "memory": "infrastructure.jobs.memory.backend:MemoryBackend",
    "sql": "infrastructure.jobs.sql.backend:SqlBackend",
    "dramatiq": "infrastructure.jobs.dramatiq.backend:DramatiqBackend",
}
"""The adapters that come with the service, imported only when chosen."""

_registered: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make `factory` the backend called `name` in this process."""
    _registered[name] = factory


def known_backend(name: str) -> bool:
    """Whether `name` is a built-in or registered backend, or has the form `module:attr`."""
    return name in BUILT_IN or name in _registered or _is_path(name)


def create_backend(name: str, context: BackendContext) -> JobBackend:
    """The backend called `name` over `context`.

    Raises:
        BackendError: no backend has this name, or its module cannot be imported.
    """
    if name in _registered:
        return _registered[name](context)
    path = BUILT_IN.get(name, name)
    if not _is_path(path):
        known = ", ".join(sorted({*BUILT_IN, *_registered}))
        raise BackendError(f"no job backend {name!r}; choose one of {known} or module:Class")
    module_name, _, attribute = path.partition(":")
    try:
        factory: BackendFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"job backend {name!r} cannot be loaded: {exc}") from exc
    return factory(context)


def _is_path(name: str) -> bool:
    module, colon, attribute = name.partition(":")
    return bool(colon) and all(part.isidentifier() for part in [*module.split("."), attribute])
