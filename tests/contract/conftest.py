"""The `engine` fixture: one engine (client, worker, scheduler, watchdog) per job backend.

Each entry of `ADAPTERS` is an async context manager that yields a fresh backend on an empty
store and closes it on exit. The SQL entries run the engine over a store on the session's
database of each kind; `toy` is a backend from a test package (`tests.plugins`), loaded by
name like any other, on which only the tests marked `smoke` run. The `*-sync` entries give the
tests the synchronous port (`SyncJobService`) behind an awaiting shim; the smoke subset runs
through it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from application.jobs import JobService
from infrastructure.jobs.backend import (
    BackendContext,
    DatabaseConfig,
    EngineBackend,
    create_backend,
)
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.dramatiq.backend import DramatiqBackend
from infrastructure.jobs.engine.admin import EngineJobAdmin
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor, construct
from infrastructure.jobs.engine.middleware import JobMiddleware, Middlewares
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.engine.watchdog import Watchdog
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.memory.backend import MemoryBackend
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.jobs.sync_port import LoopThreadJobService
from tests.brokers import (
    BROKER_URLS,
    HAND_DRIVEN,
    SESSION_PREFIX,
    empty_queues,
    reachable_broker,
    remember_queues,
)
from tests.contract.handlers import Journal, build_registry
from tests.contract.through_sync_port import ThroughSyncPort
from tests.databases import SERVER_URLS, empty_tables
from tests.engine_loop import drain

START = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)
"""The fake clock's first reading in every test."""

SERVER_ID = "server-a"
QUEUES = ("critical", "default", "low")
LEASE = dt.timedelta(seconds=30)
MAX_DRAIN_ROUNDS = 100
TOY_BACKEND = "tests.plugins.toy_backend:ToyBackend"
DEAD_LETTER = "dead-letter"

BackendFactory = Callable[
    [pytest.FixtureRequest, BackendContext], AbstractAsyncContextManager[EngineBackend]
]


@asynccontextmanager
async def closing(backend: EngineBackend) -> AsyncIterator[EngineBackend]:
    try:
        yield backend
    finally:
        await backend.close()


def memory_backend(request: pytest.FixtureRequest, context: BackendContext) -> Any:
    return closing(MemoryBackend(context))


def toy_backend(request: pytest.FixtureRequest, context: BackendContext) -> Any:
    backend = create_backend(TOY_BACKEND, context)
    assert isinstance(backend, EngineBackend)
    return closing(backend)


def sql_backend(kind: str, *, one_statement_verbs: bool = True) -> BackendFactory:
    """The engine over a store on the session's database of `kind`, its tables emptied."""

    def factory(request: pytest.FixtureRequest, context: BackendContext) -> Any:
        engine: sa.Engine = request.getfixturevalue(f"{kind.replace('-', '_')}_engine")
        store = SQLAlchemyJobStore(engine, one_statement_verbs=one_statement_verbs)
        empty_tables(engine, store.metadata)
        return closing(EngineBackend(store, context))

    return factory


def dramatiq_backend(broker: str, state: str) -> BackendFactory:
    """The dramatiq backend on a real `broker`, its state on the session's `state` database;
    tables and this session's queues emptied."""

    def factory(request: pytest.FixtureRequest, context: BackendContext) -> Any:
        engine: sa.Engine = request.getfixturevalue(f"{state}_engine")
        reachable_broker(broker).close()
        empty_queues(broker, [*QUEUES, DEAD_LETTER])
        url = engine.url.render_as_string(hide_password=False)
        options = {"BROKER_URL": BROKER_URLS[broker], "QUEUE_PREFIX": SESSION_PREFIX, **HAND_DRIVEN}
        backend = DramatiqBackend(
            dataclasses.replace(context, database=DatabaseConfig(url=url), options=options)
        )
        empty_tables(backend.database, backend.outbox.metadata)
        return closing_dramatiq(broker, backend)

    return factory


@asynccontextmanager
async def closing_dramatiq(kind: str, backend: DramatiqBackend) -> AsyncIterator[EngineBackend]:
    """`closing`, remembering the queues the test declared, to delete at the session's end."""
    try:
        async with closing(backend) as opened:
            yield opened
    finally:
        remember_queues(kind, backend.queues.broker.get_declared_queues())


ADAPTERS: dict[str, BackendFactory] = {
    "memory": memory_backend,
    "sqlite": sql_backend("sqlite"),
    "postgresql": sql_backend("postgresql"),
    # the general path of the verbs PostgreSQL does in one statement, to prove they agree
    "postgresql-general": sql_backend("postgresql", one_statement_verbs=False),
    "mariadb": sql_backend("mariadb"),
    "mariadb-odbc": sql_backend("mariadb-odbc"),  # pyodbc, the driver path of SQL Server
    "toy": toy_backend,
    "dramatiq-rabbitmq": dramatiq_backend("rabbitmq", "sqlite"),
    "dramatiq-redis": dramatiq_backend("redis", "postgresql"),
}
if "mssql" in SERVER_URLS:  # opt-in: TEST_MSSQL_URL
    ADAPTERS["mssql"] = sql_backend("mssql")
THROUGH_SYNC_PORT = ("memory", "sqlite", "postgresql")
"""Adapters whose smoke subset also runs through the synchronous port."""
SYNC_SUFFIX = "-sync"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The toy backend and the synchronous port run the smoke subset only."""
    deselected = [
        item for item in items if _smoke_only(item) and item.get_closest_marker("smoke") is None
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def _smoke_only(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    adapter = callspec.params.get("engine") if callspec is not None else None
    return isinstance(adapter, str) and (adapter == "toy" or adapter.endswith(SYNC_SUFFIX))


@dataclass(frozen=True)
class Hooked:
    """Engine parts that run middleware."""

    jobs: EngineJobService
    worker: Worker
    watchdog: Watchdog


@dataclass
class Engine:
    """A whole engine over one store, driven by hand with a fake clock."""

    clock: FakeClock
    registry: HandlerRegistry
    backend: EngineBackend
    jobs: JobService
    """The port, as application code sees it (so mypy checks handler arguments)."""
    worker: Worker
    scheduler: Scheduler
    watchdog: Watchdog
    extra_workers: list[Worker] = field(default_factory=list)

    @property
    def store(self) -> JobStore:
        return self.backend.store

    @property
    def executor(self) -> Executor:
        return self.backend.executor

    @property
    def admin(self) -> EngineJobAdmin:
        return self.backend.admin

    async def drain(self) -> int:
        return await drain(self.scheduler, self.worker, max_rounds=MAX_DRAIN_ROUNDS)

    def start_worker(self) -> asyncio.Task[int]:
        """Run `worker.run_once()` in a task, to act on the store while its jobs run."""
        return asyncio.create_task(self.worker.run_once())

    def new_worker(
        self,
        *,
        server_id: str = "server-b",
        middleware: list[JobMiddleware] | None = None,
        **settings: Any,
    ) -> Worker:
        """Another worker on the same store and handlers, with its own settings (and
        middleware, if given)."""
        worker = Worker(
            self.store,
            self.executor,
            self.clock,
            server_id=server_id,
            settings=WorkerSettings(**{"queues": QUEUES, "lease": LEASE, **settings}),
            middleware=None if middleware is None else Middlewares(middleware),
        )
        self.extra_workers.append(worker)
        return worker

    def with_middleware(self, *middleware: JobMiddleware) -> Hooked:
        """A client, a worker and a watchdog on this store with these middleware."""
        chain = Middlewares(middleware)
        return Hooked(
            jobs=EngineJobService(self.store, self.registry, self.clock, middleware=chain),
            worker=Worker(
                self.store,
                self.executor,
                self.clock,
                server_id="server-m",
                settings=WorkerSettings(queues=(*QUEUES, DEAD_LETTER), lease=LEASE),
                middleware=chain,
            ),
            watchdog=Watchdog(self.store, self.clock, middleware=chain),
        )

    def new_scheduler(self, store: JobStore | None = None) -> Scheduler:
        return Scheduler(store or self.store, self.clock)


@pytest.fixture(autouse=True)
def journal() -> Iterator[type[Journal]]:
    Journal.reset()
    yield Journal
    Journal.reset()


@pytest.fixture(params=[*ADAPTERS, *(name + SYNC_SUFFIX for name in THROUGH_SYNC_PORT)])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    adapter, through_sync, _ = str(request.param).partition(SYNC_SUFFIX)
    clock = FakeClock(START)
    registry = build_registry()
    context = BackendContext(
        registry=registry,
        handler_factory=construct,
        clock=clock,
        database=DatabaseConfig(url="sqlite://"),  # the SQL entries bring their own store
        worker=WorkerSettings(queues=QUEUES, concurrency=4, lease=LEASE),
    )
    async with ADAPTERS[adapter](request, context) as backend:
        sync_port = LoopThreadJobService(backend.jobs) if through_sync else None
        try:
            yield Engine(
                clock=clock,
                registry=registry,
                backend=backend,
                jobs=backend.jobs if sync_port is None else ThroughSyncPort(sync_port),
                worker=backend.worker(server_id=SERVER_ID),
                scheduler=backend.scheduler(),
                watchdog=backend.watchdog(),
            )
        finally:
            if sync_port is not None:
                sync_port.close()
