"""The example's tests: the handler called directly, then the use case through the real
container and job engine (in memory), as `serve` runs it. Replace them with yours."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from application.jobs import JobId, JobState, JobView
from domain.greetings import GreetingJobs
from host.app import create_app
from host.container import Container
from host.settings import DatabaseSettings, JobsSettings, Settings
from infrastructure.jobs.clock import FakeClock
from infrastructure.persistence.memory import InMemoryGreetingLog
from tests.unit.domain.fakes import RecordingContext

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
WAIT_SECONDS = 20.0
SETTLED = (JobState.SUCCEEDED, JobState.FAILED)


def test_a_greeting_is_logged_and_counted_for_a_day() -> None:
    log, clock = InMemoryGreetingLog(), FakeClock(NOW)
    jobs = GreetingJobs(log, clock, RecordingContext())
    assert jobs.send("Ada") == "Hello, Ada!"
    assert jobs.count_daily() == 1
    clock.advance(dt.timedelta(days=1, seconds=1))
    assert jobs.count_daily() == 0


def test_a_blank_name_is_refused() -> None:
    jobs = GreetingJobs(InMemoryGreetingLog(), FakeClock(NOW), RecordingContext())
    with pytest.raises(ValueError, match="blank"):
        jobs.send("  ")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        db=DatabaseSettings(url=f"sqlite:///{tmp_path / 'service.db'}"),
        jobs=JobsSettings(backend="memory", poll_seconds=0.05, scheduler_poll_seconds=0.1),
        temp_directory=tmp_path / "tmp",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def settled(container: Container, job_id: JobId) -> JobView:
    """The job once it succeeded or failed (a run takes well under a second)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            job = await container.jobs().get(job_id)
            if job.state in SETTLED:
                return job
            await asyncio.sleep(0.05)


async def declared_once_started(container: Container) -> set[str]:
    """The recurring ids once the runtime has declared them: it does so in the background,
    after start-up (migrations included)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            declared = {job.id for job in await container.jobs().list_recurring()}
            if declared:
                return declared
            await asyncio.sleep(0.05)


async def test_the_use_case_greets_in_the_background_once_per_name(app: FastAPI) -> None:
    container: Container = app.state.container
    greet = container.use_cases.greet_someone()
    job_id = await greet("Ada")
    assert await greet("Ada") == job_id  # the unique key keeps one greeting in flight
    job = await settled(container, job_id)
    assert job.state is JobState.SUCCEEDED
    assert container.adapters.greetings().sent_since(NOW - dt.timedelta(days=3650))


async def test_the_daily_count_is_declared_as_a_recurring_job(app: FastAPI) -> None:
    container: Container = app.state.container
    assert "daily-greetings" in await declared_once_started(container)
