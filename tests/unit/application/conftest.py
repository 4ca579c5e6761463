"""The use cases run end to end: the real in-memory job engine (store, client, worker,
scheduler) with a fake clock, the handlers built from the in-memory adapters."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from application.jobs import JobId, JobState, JobView, RetryPolicy
from domain.invoices import InvoiceJobs
from domain.maintenance import HeartbeatJobs, TempFileJobs, TempFileSettings
from domain.notifications import NotificationJobs
from domain.reports import ReportJobs
from domain.users import EmailJobs
from host.catalog import register_handlers
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.memory.store import InMemoryJobStore
from infrastructure.persistence.memory import (
    InMemoryInvoiceRepository,
    InMemoryNotificationRepository,
    InMemoryPasswordResetRepository,
    InMemoryReportRepository,
    InMemorySubscriptionRepository,
    InMemoryUserRepository,
)
from tests.engine_loop import drain

START = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
"""The fake clock's first reading in every test."""

QUEUES = ("critical", "default", "low")
MAX_DRAIN_ROUNDS = 50

NOTIFY_RETRY = RetryPolicy(attempts=3, delays=(10, 60))
"""Retries of a notification: after 10 s, then after 60 s, then it has failed."""

T = TypeVar("T")


@dataclass
class Adapters:
    """Every domain port, by its in-memory adapter."""

    temp_directory: Path
    users: InMemoryUserRepository = field(default_factory=InMemoryUserRepository)
    resets: InMemoryPasswordResetRepository = field(default_factory=InMemoryPasswordResetRepository)
    invoices: InMemoryInvoiceRepository = field(default_factory=InMemoryInvoiceRepository)
    subscriptions: InMemorySubscriptionRepository = field(
        default_factory=InMemorySubscriptionRepository
    )
    reports: InMemoryReportRepository = field(default_factory=InMemoryReportRepository)
    notifications: InMemoryNotificationRepository = field(
        default_factory=InMemoryNotificationRepository
    )
    email: LoggingEmailSender = field(default_factory=LoggingEmailSender)


class HandlerFactory:
    """Stands in for the DI container: builds each handler class with its adapters, plus the
    `JobContext` the executor passes for classes that ask for one."""

    def __init__(self, adapters: Adapters, clock: FakeClock) -> None:
        a = adapters
        self._builders: dict[type, Callable[..., object]] = {
            EmailJobs: lambda: EmailJobs(a.users, a.resets, a.email, clock),
            InvoiceJobs: lambda context: InvoiceJobs(
                a.invoices, a.subscriptions, a.email, clock, context
            ),
            ReportJobs: lambda: ReportJobs(a.reports, a.users, a.invoices, a.email, clock),
            NotificationJobs: lambda context: NotificationJobs(
                a.users, a.notifications, a.email, clock, context
            ),
            TempFileJobs: lambda context: TempFileJobs(
                TempFileSettings(directory=a.temp_directory), clock, context
            ),
            HeartbeatJobs: lambda context: HeartbeatJobs(clock, context),
        }

    def __call__(self, cls: type[T], /, **context: Any) -> T:
        return cast(T, self._builders[cls](**context))


@dataclass
class Service:
    """The service's job side, driven by hand: nothing runs until the test says so."""

    clock: FakeClock
    adapters: Adapters
    jobs: EngineJobService
    worker: Worker
    scheduler: Scheduler

    async def drain(self) -> int:
        return await drain(self.scheduler, self.worker, max_rounds=MAX_DRAIN_ROUNDS)

    async def advance_and_drain(self, by: dt.timedelta) -> int:
        self.clock.advance(by)
        return await self.drain()

    async def job(self, job_id: JobId) -> JobView:
        return await self.jobs.get(job_id)

    async def state(self, job_id: JobId) -> JobState:
        return (await self.jobs.get(job_id)).state


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    clock = FakeClock(START)
    adapters = Adapters(temp_directory=tmp_path)
    registry = HandlerRegistry()
    register_handlers(registry)
    store = InMemoryJobStore()
    executor = Executor(registry, HandlerFactory(adapters, clock))
    worker = Worker(
        store, executor, clock, server_id="test-server", settings=WorkerSettings(queues=QUEUES)
    )
    yield Service(
        clock=clock,
        adapters=adapters,
        jobs=EngineJobService(store, registry, clock),
        worker=worker,
        scheduler=Scheduler(store, clock),
    )
    executor.shutdown()
