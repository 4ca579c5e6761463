"""The use cases run end to end: the real in-memory job engine (store, client, worker,
scheduler) with a fake clock, the handlers built from the in-memory adapters."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from application.jobs import JobId, JobState, JobView, RetryPolicy
from application.unit_of_work import UnitOfWork
from host.container import Container, create_container
from host.settings import DatabaseSettings, JobsSettings, Settings
from infrastructure.email import LoggingEmailSender
from infrastructure.jobs.backend import EngineBackend
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.worker import Worker
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


@dataclass
class Adapters:
    """Every domain port, by its in-memory adapter, as the container built them."""

    temp_directory: Path
    users: InMemoryUserRepository
    resets: InMemoryPasswordResetRepository
    invoices: InMemoryInvoiceRepository
    subscriptions: InMemorySubscriptionRepository
    reports: InMemoryReportRepository
    notifications: InMemoryNotificationRepository
    email: LoggingEmailSender

    @classmethod
    def of(cls, container: Container) -> Adapters:
        a = container.adapters
        return cls(
            temp_directory=container.settings().temp_directory,
            users=a.users(),
            resets=a.resets(),
            invoices=a.invoices(),
            subscriptions=a.subscriptions(),
            reports=a.reports(),
            notifications=a.notifications(),
            email=a.email(),
        )


@dataclass
class Service:
    """The service's job side, driven by hand: nothing runs until the test says so."""

    clock: FakeClock
    container: Container
    adapters: Adapters
    jobs: EngineJobService
    uow: UnitOfWork
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


def memory_settings(temp_directory: Path) -> Settings:
    """The service's settings with everything in memory: jobs and business rows."""
    return Settings(
        environment="prod",  # no sample every-minute job
        temp_directory=temp_directory,
        db=DatabaseSettings(url="sqlite://", persistence="memory"),
        jobs=JobsSettings(backend="memory", queues=list(QUEUES)),
    )


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """The container the service runs on, with a fake clock and everything in memory."""
    clock = FakeClock(START)
    container = create_container(memory_settings(tmp_path))
    container.clock.override(clock)
    backend = container.backend()
    assert isinstance(backend, EngineBackend) and isinstance(backend.jobs, EngineJobService)
    yield Service(
        clock=clock,
        container=container,
        adapters=Adapters.of(container),
        jobs=backend.jobs,
        uow=container.unit_of_work(),
        worker=backend.worker(server_id="test-server"),
        scheduler=backend.scheduler(),
    )
    await backend.close()
