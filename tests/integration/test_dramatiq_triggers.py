"""Event triggers on RabbitMQ: a message published to a bound exchange enqueues its handler
with the body as arguments; a message that cannot become a job is dead-lettered with the
reason, and acknowledged."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pika
import pytest
import sqlalchemy as sa

from application.jobs import JobFilter, JobSort, JobState, JobSummary
from infrastructure.jobs.backend import BackendContext, BackendError, DatabaseConfig
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.dramatiq.backend import DramatiqBackend
from infrastructure.jobs.engine.execution import construct
from infrastructure.jobs.sql import migrate
from tests.brokers import BROKER_URLS, reachable_broker
from tests.contract.handlers import build_registry

ROUTING_KEY = "order.created"


def context_for(tmp_path: Path, **options: str) -> BackendContext:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return BackendContext(
        registry=build_registry(),
        handler_factory=construct,
        clock=SystemClock(),
        database=DatabaseConfig(url=url),
        options=options,
    )


@pytest.fixture
async def triggered(tmp_path: Path) -> AsyncIterator[tuple[DramatiqBackend, str, str]]:
    """A backend whose trigger binds a fresh exchange to `Recorder.record`, its consumer
    running; yields it, the exchange and the prefix."""
    reachable_broker("rabbitmq").close()
    prefix, exchange = f"triggers-{uuid.uuid4().hex[:8]}.", f"events-{uuid.uuid4().hex[:8]}"
    trigger = {"exchange": exchange, "routing_key": ROUTING_KEY, "handler": "Recorder.record"}
    backend = DramatiqBackend(
        context_for(
            tmp_path,
            BROKER_URL=BROKER_URLS["rabbitmq"],
            QUEUE_PREFIX=prefix,
            TRIGGERS=json.dumps([trigger]),
        )
    )
    assert backend.triggers is not None
    with pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"])) as connection:
        backend.triggers.declare(connection.channel())  # bound before anything is published
    stopping = asyncio.Event()
    consuming = asyncio.create_task(backend.triggers.run(stopping))
    try:
        yield backend, exchange, prefix
    finally:
        stopping.set()
        await consuming
        with pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"])) as connection:
            channel = connection.channel()
            channel.exchange_delete(exchange)
            for queue in (
                f"{prefix}trigger.Recorder.record",
                f"{prefix}trigger.Recorder.record.dead",
            ):
                channel.queue_delete(queue)
        await backend.close()


def publish(exchange: str, body: bytes) -> None:
    with pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"])) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, ROUTING_KEY, body)


async def enqueued_jobs(backend: DramatiqBackend, expected: int) -> list[JobSummary]:
    """The jobs enqueued so far, once there are `expected` (bounded wait for a broken run)."""
    async with asyncio.timeout(10):
        while True:
            found = await backend.outbox.list_jobs(
                JobFilter(states=frozenset({JobState.ENQUEUED})), sort=JobSort.OLDEST, limit=10
            )
            if len(found) >= expected:
                return list(found)
            await asyncio.sleep(0.05)


def dead_letters(prefix: str) -> list[tuple[bytes, dict[str, object]]]:
    """The dead-letter queue's messages (taken off it)."""
    taken: list[tuple[bytes, dict[str, object]]] = []
    with pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"])) as connection:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(f"{prefix}trigger.Recorder.record.dead")
            if method is None:
                return taken
            channel.basic_ack(method.delivery_tag)
            taken.append((body, dict(properties.headers or {})))


async def test_an_event_enqueues_its_handler_with_the_body_as_arguments(
    triggered: tuple[DramatiqBackend, str, str],
) -> None:
    backend, exchange, prefix = triggered

    publish(exchange, b"[21]")

    [job] = await enqueued_jobs(backend, 1)
    view = await backend.jobs.get(job.id)
    assert view is not None and view.handler == "Recorder.record" and view.args == [21]
    assert dead_letters(prefix) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "JSONDecodeError"),
        (b'"a string"', "must be a JSON array"),
        (b'{"value": "seven"}', "InvalidArguments"),
        (b"[1, 2, 3]", "InvalidArguments"),
    ],
)
async def test_a_message_that_cannot_become_a_job_is_dead_lettered_with_the_reason(
    triggered: tuple[DramatiqBackend, str, str], body: bytes, reason: str
) -> None:
    backend, exchange, prefix = triggered

    publish(exchange, body)
    publish(exchange, b"[1]")  # after it: once this one is a job, the first was handled

    await enqueued_jobs(backend, 1)
    [(dead_body, headers)] = dead_letters(prefix)
    assert dead_body == body
    assert reason in str(headers["x-death-reason"])


def test_triggers_need_rabbitmq_and_a_valid_list(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="needs a RabbitMQ broker"):
        DramatiqBackend(context_for(tmp_path, BROKER_URL=BROKER_URLS["redis"], TRIGGERS="[]"))
    with pytest.raises(BackendError, match="JSON list"):
        DramatiqBackend(
            context_for(tmp_path, BROKER_URL=BROKER_URLS["rabbitmq"], TRIGGERS='{"x": 1}')
        )
