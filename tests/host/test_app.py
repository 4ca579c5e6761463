"""The real container and app, booted as `serve` boots them, running jobs end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from application.jobs import JobId, JobState
from host.app import create_app
from host.container import Container, recurring_declarations
from host.settings import DatabaseSettings, JobsSettings, Settings

WAIT_SECONDS = 20.0


def settings_for(backend: str, tmp_path: Path) -> Settings:
    return Settings(
        db=DatabaseSettings(url=f"sqlite:///{tmp_path / 'data' / 'jobs.db'}"),
        jobs=JobsSettings(backend=backend, poll_seconds=0.05, scheduler_poll_seconds=0.1),
        temp_directory=tmp_path / "tmp",
    )


@pytest.fixture(params=["memory", "sql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app after start-up, ready to serve."""
    app = create_app(settings_for(request.param, tmp_path))
    async with app.router.lifespan_context(app):
        async with client_of(app) as client:
            await wait_until_ready(client)
        yield app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def container_of(app: FastAPI) -> Container:
    container: Container = app.state.container
    return container


async def wait_for_state(app: FastAPI, job_id: JobId, state: JobState) -> None:
    jobs = container_of(app).jobs()
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if (await jobs.get(job_id)).state is state:
                return
            await asyncio.sleep(0.02)


async def wait_until_ready(client: httpx.AsyncClient) -> httpx.Response:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            response = await client.get("/health/ready")
            if response.status_code == 200:
                return response
            await asyncio.sleep(0.02)


async def test_ready_service_answers_both_health_checks(app: FastAPI) -> None:
    async with client_of(app) as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        assert (await client.get("/health/ready")).json() == {"status": "ready"}


async def test_registering_a_user_sends_the_welcome_email_through_a_job(app: FastAPI) -> None:
    container = container_of(app)

    registration = await container.use_cases.register_user()("ada@example.com", "Ada")
    await wait_for_state(app, registration.welcome_job_id, JobState.SUCCEEDED)

    sent = container.adapters.email().sent
    assert [message.to for message in sent] == ["ada@example.com"]


async def test_start_up_declares_the_recurring_jobs(app: FastAPI) -> None:
    container = container_of(app)
    stored = [r.id for r in await container.jobs().list_recurring()]

    declared = recurring_declarations(container.settings(), container.features())
    assert stored == sorted(d.id for d in declared)
    assert {"monthly-invoices", "orders-daily-digest", "sample-heartbeat"} <= set(stored)


async def test_readiness_is_unavailable_until_the_schema_is_migrated(tmp_path: Path) -> None:
    settings = settings_for("sql", tmp_path)
    settings = settings.model_copy(
        update={"db": settings.db.model_copy(update={"migrate_on_start": False})}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_of(app) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert "schema" in response.json()["reason"]
