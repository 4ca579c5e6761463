"""The `engine` fixture: one engine (client, worker, scheduler, watchdog) per store adapter.

Add a SQL adapter by adding an entry to `ADAPTERS`: an async context manager that yields a
fresh, empty store and cleans up (drops its schema) on exit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from application.jobs import JobService
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.handlers import HandlerRegistry
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.memory.store import InMemoryJobStore
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.contract.handlers import Journal, build_registry
from tests.databases import SERVER_URLS, empty_tables
from tests.engine_loop import drain

START = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)
"""The fake clock's first reading in every test."""

SERVER_ID = "server-a"
QUEUES = ("critical", "default", "low")
LEASE = dt.timedelta(seconds=30)
MAX_DRAIN_ROUNDS = 100

StoreFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[JobStore]]


@asynccontextmanager
async def memory_store(request: pytest.FixtureRequest) -> AsyncIterator[JobStore]:
    yield InMemoryJobStore()


def sql_store(kind: str) -> StoreFactory:
    """A store on the session's database of `kind`, its tables emptied for each test."""

    @asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[JobStore]:
        engine: sa.Engine = request.getfixturevalue(f"{kind.replace('-', '_')}_engine")
        store = SQLAlchemyJobStore(engine)
        empty_tables(engine, store.metadata)
        try:
            yield store
        finally:
            await store.close()

    return factory


ADAPTERS: dict[str, StoreFactory] = {
    "memory": memory_store,
    "sqlite": sql_store("sqlite"),
    "postgresql": sql_store("postgresql"),
    "mariadb": sql_store("mariadb"),
    "mariadb-odbc": sql_store("mariadb-odbc"),  # pyodbc, the driver path of SQL Server
}
if "mssql" in SERVER_URLS:  # opt-in: TEST_MSSQL_URL
    ADAPTERS["mssql"] = sql_store("mssql")


SQL_ADAPTERS = frozenset(ADAPTERS) - {"memory"}


def known_failure(request: pytest.FixtureRequest, *, on: frozenset[str], reason: str) -> None:
    """Expect the running contract test to fail on the adapters `on` (strict: it must fail
    there, so the mark goes as soon as the behaviour is fixed)."""
    if request.node.callspec.params["engine"] in on:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@dataclass
class Engine:
    """A whole engine over one store, driven by hand with a fake clock."""

    clock: FakeClock
    registry: HandlerRegistry
    store: JobStore
    jobs: JobService
    """The port, as application code sees it (so mypy checks handler arguments)."""
    executor: Executor
    worker: Worker
    scheduler: Scheduler
    watchdog: Watchdog
    extra_workers: list[Worker] = field(default_factory=list)

    async def drain(self) -> int:
        return await drain(self.scheduler, self.worker, max_rounds=MAX_DRAIN_ROUNDS)

    def start_worker(self) -> asyncio.Task[int]:
        """Run `worker.run_once()` in a task, to act on the store while its jobs run."""
        return asyncio.create_task(self.worker.run_once())

    def new_worker(self, *, server_id: str = "server-b", **settings: Any) -> Worker:
        """Another worker on the same store and handlers, with its own settings."""
        worker = Worker(
            self.store,
            self.executor,
            self.clock,
            server_id=server_id,
            settings=WorkerSettings(**{"queues": QUEUES, "lease": LEASE, **settings}),
        )
        self.extra_workers.append(worker)
        return worker

    def new_scheduler(self, store: JobStore | None = None) -> Scheduler:
        return Scheduler(store or self.store, self.clock)


@pytest.fixture(autouse=True)
def journal() -> Iterator[type[Journal]]:
    Journal.reset()
    yield Journal
    Journal.reset()


@pytest.fixture(params=list(ADAPTERS))
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    factory = ADAPTERS[request.param]
    clock = FakeClock(START)
    registry = build_registry()
    async with factory(request) as store:
        executor = Executor(registry)
        harness = Engine(
            clock=clock,
            registry=registry,
            store=store,
            jobs=EngineJobService(store, registry, clock),
            executor=executor,
            worker=Worker(
                store,
                executor,
                clock,
                server_id=SERVER_ID,
                settings=WorkerSettings(queues=QUEUES, concurrency=4, lease=LEASE),
            ),
            scheduler=Scheduler(store, clock),
            watchdog=Watchdog(store, clock, WatchdogSettings()),
        )
        try:
            yield harness
        finally:
            executor.shutdown()
