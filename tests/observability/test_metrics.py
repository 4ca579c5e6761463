"""The engine's Prometheus metrics, and /metrics. Counters are process-wide, so each test
compares samples before and after what it does."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from application.jobs import RetryPolicy
from domain.maintenance import HeartbeatJobs
from host.app import create_app
from host.container import Container
from host.settings import (
    ApiKey,
    AuthSettings,
    DatabaseSettings,
    JobsSettings,
    MetricsSettings,
    Settings,
)
from infrastructure.jobs.engine.model import ServerInfo
from tests.contract.handlers import Blocking, Journal, Recorder
from tests.engine_loop import engine_of
from tests.observability.conftest import START, Engine

READ_KEY = "read-key-for-metrics-tests"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def delta_of(name: str, **labels: str) -> Callable[[], float]:
    """How much the sample grew since this call."""
    before = sample(name, **labels)
    return lambda: sample(name, **labels) - before


async def test_executions_are_counted_by_outcome(engine: Engine) -> None:
    # Given counters before two succeeding jobs, one that will be retried, one failing for good
    record = {"queue": "default", "handler": "Recorder.record"}
    fail = {"queue": "default", "handler": "Recorder.fail"}
    enqueued = delta_of("jobs_enqueued_total", **record)
    succeeded = delta_of("jobs_processed_total", **record, outcome="succeeded")
    retried = delta_of("jobs_processed_total", **fail, outcome="retried")
    failed_for_good = delta_of("jobs_processed_total", **fail, outcome="failed")
    failures = delta_of("jobs_failed_total", **fail)
    durations = delta_of("job_duration_seconds_count", **record)

    # When they run
    await engine.jobs.enqueue(Recorder.record, 1)
    await engine.jobs.enqueue(Recorder.record, 2)
    await engine.jobs.options(retry=RetryPolicy(attempts=2, delays=(0,))).enqueue(
        Recorder.fail, "retried"
    )
    await engine.jobs.options(retry=RetryPolicy(attempts=1)).enqueue(Recorder.fail, "for good")
    await engine.drain()

    # Then
    assert (enqueued(), succeeded(), durations()) == (2, 2, 2)
    assert (retried(), failed_for_good(), failures()) == (1, 2, 3)


async def test_job_deleted_while_running_counts_as_cancelled(engine: Engine) -> None:
    cancelled = delta_of(
        "jobs_processed_total", queue="default", handler="Blocking.hold", outcome="cancelled"
    )
    durations = delta_of("job_duration_seconds_count", queue="default", handler="Blocking.hold")
    job_id = await engine.jobs.enqueue(Blocking.hold, "doomed")
    running = asyncio.create_task(engine.worker.run_once())
    await Journal.started["doomed"].wait()

    await engine.jobs.delete(job_id)
    await engine.worker.heartbeat()
    await running

    assert (cancelled(), durations()) == (1, 0)


async def test_pickup_latency_is_claim_time_minus_when_the_job_became_runnable(
    engine: Engine,
) -> None:
    count = delta_of("job_pickup_latency_seconds_count", queue="default")
    total = delta_of("job_pickup_latency_seconds_sum", queue="default")

    # Given a job enqueued now, and one scheduled for a minute from now
    await engine.jobs.enqueue(Recorder.record, 1)
    await engine.jobs.schedule(timedelta(minutes=1), Recorder.record, 2)

    # When the worker claims them 5 s after they became runnable
    engine.clock.advance(timedelta(seconds=5))
    await engine.drain()
    engine.clock.advance(timedelta(minutes=1))
    await engine.scheduler.tick()
    await engine.worker.run_once()

    # Then each waited 5 s (the sum is a difference of process-wide floats: approximate)
    assert count() == 2
    assert total() == pytest.approx(10.0)


async def test_recurring_tick_is_counted_with_its_lag(engine: Engine) -> None:
    lag_count = delta_of("recurring_tick_lag_seconds_count")
    lag_total = delta_of("recurring_tick_lag_seconds_sum")
    enqueued = delta_of("jobs_enqueued_total", queue="default", handler="Recorder.record")

    # Given a job every minute, whose first tick (09:01) the scheduler sees 20 s late
    await engine.jobs.add_or_update_recurring("every-minute", "* * * * *", Recorder.record, 1)
    engine.clock.advance(timedelta(minutes=1, seconds=20))

    await engine.scheduler.tick()

    assert (lag_count(), lag_total(), enqueued()) == (1, 20.0, 1)


async def test_duplicate_of_a_unique_job_is_not_counted(engine: Engine) -> None:
    # a queue of its own: the counter is process-wide, and other tests' engines count too
    enqueued = delta_of("jobs_enqueued_total", queue="unique-count", handler="Recorder.record")
    unique = engine.jobs.options(unique_key="only-one", queue="unique-count")

    await unique.enqueue(Recorder.record, 1)
    await unique.enqueue(Recorder.record, 1)

    assert enqueued() == 1


# --- /metrics ---------------------------------------------------------------------------------
def metrics_settings(tmp_path: Path, *, public: bool) -> Settings:
    key = ApiKey(name="scraper", sha256=hashlib.sha256(READ_KEY.encode()).hexdigest())
    return Settings(
        db=DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}"),
        jobs=JobsSettings(backend="memory"),
        auth=AuthSettings(api_keys=[key]),
        metrics=MetricsSettings(public=public, state_cache_seconds=0),
        temp_directory=tmp_path / "tmp",
    )


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[[bool], FastAPI]:
    """An app over the memory store (not started: /metrics reads the store directly)."""
    return lambda public: create_app(metrics_settings(tmp_path, public=public))


@pytest.fixture
async def client() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []

    def open_client(app: FastAPI) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app)
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://test"))
        return opened[-1]

    yield open_client
    for each in opened:
        await each.aclose()


async def test_metrics_show_jobs_by_state_and_server_heartbeat_age(
    make_app: Callable[[bool], FastAPI], client: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    # Given an enqueued job and a server whose last heartbeat is 7 s old
    app = make_app(False)
    container: Container = app.state.container
    await container.jobs().enqueue(HeartbeatJobs.beat)
    now = container.clock().now()
    await engine_of(container).store.heartbeat(
        ServerInfo(
            id="server-z",
            queues=("default",),
            concurrency=1,
            started_at=START,
            heartbeat_at=now - timedelta(seconds=7),
        )
    )

    # When a scraper with a read key asks
    response = await client(app).get("/metrics", headers={"X-API-Key": READ_KEY})

    # Then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'jobs_in_state{state="enqueued"} 1.0' in response.text
    assert 'jobs_in_state{state="failed"} 0.0' in response.text
    assert 'server_heartbeat_age_seconds{server="server-z"}' in response.text
    assert "# TYPE jobs_processed_total counter" in response.text
    assert sample("server_heartbeat_age_seconds", server="server-z") >= 7.0


async def test_metrics_need_credentials_unless_public(
    make_app: Callable[[bool], FastAPI], client: Callable[[FastAPI], httpx.AsyncClient]
) -> None:
    assert (await client(make_app(False)).get("/metrics")).status_code == 401
    assert (await client(make_app(True)).get("/metrics")).status_code == 200
