"""An engine driven by hand with a fake clock (on the memory store and on SQLite, which must
keep a job's trace context), and the spans it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infrastructure.jobs.backend import BackendContext, DatabaseConfig, EngineBackend
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import construct
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.memory.store import InMemoryJobStore
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.jobs.telemetry import default_middleware
from tests.contract.handlers import Journal, build_registry
from tests.databases import empty_tables
from tests.engine_loop import drain

START = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)


@dataclass
class Engine:
    clock: FakeClock
    store: JobStore
    jobs: EngineJobService
    worker: Worker
    scheduler: Scheduler

    async def drain(self) -> int:
        return await drain(self.scheduler, self.worker)


@asynccontextmanager
async def store_of(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[JobStore]:
    if kind == "memory":
        yield InMemoryJobStore()
        return
    engine: sa.Engine = request.getfixturevalue("sqlite_engine")
    store = SQLAlchemyJobStore(engine)
    empty_tables(engine, store.metadata)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["memory", "sqlite"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    """The engine with the service's own middleware: logs, traces and metrics."""
    clock = FakeClock(START)
    context = BackendContext(
        registry=build_registry(),
        handler_factory=construct,
        clock=clock,
        database=DatabaseConfig(url="sqlite://"),
        middleware=default_middleware(),
        worker=WorkerSettings(queues=("critical", "default", "low"), concurrency=4),
    )
    Journal.reset()
    async with store_of(request.param, request) as store:
        backend = EngineBackend(store, context)
        try:
            yield Engine(
                clock=clock,
                store=store,
                jobs=backend.jobs,
                worker=backend.worker(server_id="server-a"),
                scheduler=backend.scheduler(),
            )
        finally:
            backend.executor.shutdown()
            Journal.reset()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """The SDK, set up once per process: the global tracer provider can be set only once."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@dataclass
class Spans:
    exporter: InMemorySpanExporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        [span] = [s for s in self.all() if s.name == name]
        return span


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[Spans]:
    span_exporter.clear()
    yield Spans(span_exporter)
    span_exporter.clear()


@pytest.fixture
def tracer(span_exporter: InMemorySpanExporter) -> trace.Tracer:
    return trace.get_tracer("tests")
