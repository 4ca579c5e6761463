"""The service on the dramatiq backend, its loops running for real (relay, worker, scheduler,
watchdog): jobs enqueued through the port run, a continuation after its parent, a scheduled
job when due."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

import pytest

from application.jobs import JobId, JobState
from domain.maintenance import HeartbeatJobs
from host.container import Container, create_container
from host.runtime import JobRuntime
from host.settings import DatabaseSettings, JobsSettings, Settings
from infrastructure.jobs.backend import BackendError, Role
from infrastructure.jobs.dramatiq.backend import DramatiqBackend
from tests.brokers import BROKER_URLS, SESSION_PREFIX, empty_queues, reachable_broker

QUEUES = ["critical", "default", "low"]


def settings_for(tmp_path: Path, **options: str) -> Settings:
    return Settings(
        db=DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}"),
        jobs=JobsSettings(backend="dramatiq", options=options, queues=QUEUES, concurrency=4),
        temp_directory=tmp_path,
    )


async def wait_until_succeeded(container: Container, job_ids: list[JobId]) -> None:
    jobs = container.jobs()
    async with asyncio.timeout(20):  # a bound for a broken run, not a timing goal
        for job_id in job_ids:
            while True:
                view = await jobs.get(job_id)
                if view is not None and view.state is JobState.SUCCEEDED:
                    break
                await asyncio.sleep(0.02)


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
async def test_jobs_enqueued_through_the_port_run_on_the_brokers_workers(
    tmp_path: Path, broker: str
) -> None:
    reachable_broker(broker).close()
    empty_queues(broker, QUEUES)
    options = {"BROKER_URL": BROKER_URLS[broker], "QUEUE_PREFIX": SESSION_PREFIX}
    container = create_container(settings_for(tmp_path, **options))
    await container.backend().migrate()
    runtime = JobRuntime(container, frozenset({Role.WORKER, Role.SCHEDULER}))
    runtime.start()
    try:
        jobs = container.jobs()
        plain = [await jobs.enqueue(HeartbeatJobs.beat) for _ in range(20)]
        later = await jobs.schedule(dt.timedelta(seconds=1), HeartbeatJobs.beat)
        after = await jobs.continue_with(plain[-1], HeartbeatJobs.beat)
        await wait_until_succeeded(container, [*plain, later, after])
    finally:
        await runtime.stop()
    assert isinstance(container.backend(), DramatiqBackend)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs APP_JOBS__OPTIONS__BROKER_URL"),
        ({"BROKER_URL": "kafka://127.0.0.1"}, "must start with amqp:// or redis://"),
        (
            {"BROKER_URL": "redis://127.0.0.1", "REDELIVER_SECONDS": "soon"},
            "REDELIVER_SECONDS must be a number of seconds",
        ),
    ],
)
def test_a_misconfigured_dramatiq_backend_says_what_to_set(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    container = create_container(settings_for(tmp_path, **options))
    with pytest.raises(BackendError, match=message):
        container.backend()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("scheme", "path"), [("amqp://guest:guest@", "/%2F"), ("redis://", "/0")])
async def test_the_backend_is_not_ready_while_its_broker_cannot_be_reached(
    tmp_path: Path, scheme: str, path: str
) -> None:
    url = f"{scheme}127.0.0.1:{closed_port()}{path}"
    container = create_container(settings_for(tmp_path, BROKER_URL=url))
    backend = container.backend()
    try:
        await backend.migrate()
        storage = await backend.problem()
        delivery = await backend.delivery_problem()
    finally:
        await backend.close()
    assert storage is None  # commands that only touch storage still run
    assert delivery is not None
    assert delivery.startswith("cannot reach the dramatiq broker")


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
async def test_the_backend_is_ready_once_migrated_with_its_broker_answering(
    tmp_path: Path, broker: str
) -> None:
    reachable_broker(broker).close()
    container = create_container(settings_for(tmp_path, BROKER_URL=BROKER_URLS[broker]))
    backend = container.backend()
    try:
        unmigrated = await backend.problem()
        await backend.migrate()
        ready = await backend.problem()
        delivery = await backend.delivery_problem()
    finally:
        await backend.close()
    assert unmigrated is not None
    assert "schema" in unmigrated
    assert ready is None
    assert delivery is None
