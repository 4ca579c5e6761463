"""The dramatiq backend's delivery guarantees, on a real broker with SQLite state: the outbox
follows the transaction, a broker outage never fails an enqueue, and duplicate, stale or lost
messages neither run a job twice nor leave it waiting."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from dramatiq import Consumer, MessageProxy

from application.jobs import JobId, JobState
from infrastructure.jobs.backend import BackendContext, DatabaseConfig
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.dramatiq.backend import DramatiqBackend
from infrastructure.jobs.dramatiq.broker import BrokerQueues, create_broker, job_id_of
from infrastructure.jobs.dramatiq.outbox import OutboxMessage
from infrastructure.jobs.engine.execution import construct
from infrastructure.jobs.engine.worker import WorkerSettings
from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.backend import SqlBackend
from tests.brokers import BROKER_URLS, HAND_DRIVEN, SESSION_PREFIX, empty_queues, reachable_broker
from tests.contract.handlers import Journal, Recorder, build_registry

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    reachable_broker(request.param).close()
    empty_queues(request.param, ["default"])
    return BROKER_URLS[request.param]


def backend_on(database_url: str, broker_url: str, clock: FakeClock) -> DramatiqBackend:
    return DramatiqBackend(
        BackendContext(
            registry=build_registry(),
            handler_factory=construct,
            clock=clock,
            database=DatabaseConfig(url=database_url),
            worker=WorkerSettings(queues=("default",), concurrency=2),
            options={"BROKER_URL": broker_url, "QUEUE_PREFIX": SESSION_PREFIX, **HAND_DRIVEN},
        )
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = sa.create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
async def backend(database_url: str, broker_url: str) -> AsyncIterator[DramatiqBackend]:
    Journal.reset()
    backend = backend_on(database_url, broker_url, FakeClock(START))
    yield backend
    await backend.close()


def outbox_rows(backend: DramatiqBackend) -> list[tuple[str, bool]]:
    """(queue, sent) of each outbox row."""
    outbox = backend.outbox.tables.outbox
    with backend.database.connect() as conn:
        found = conn.execute(sa.select(outbox.c.queue, outbox.c.sent_at))
        return [(row.queue, row.sent_at is not None) for row in found]


async def test_rolled_back_enqueue_writes_no_message_and_committed_one_is_published(
    backend: DramatiqBackend,
) -> None:
    # Given one enqueue in a transaction that rolls back and one in a transaction that commits
    for commit in (False, True):
        with backend.database.connect() as conn:
            transaction = conn.begin()
            await backend.jobs.options(session=conn).enqueue(Recorder.record, int(commit))
            (transaction.commit if commit else transaction.rollback)()

    # When the relay publishes and a worker runs what it receives
    published = await backend.relay.publish_pending()
    ran = await backend.worker(server_id="w").run_once()

    # Then only the committed job had a message, and it ran
    assert published == {"default": 1}
    assert ran == 1
    assert Journal.values("record") == [1]
    assert outbox_rows(backend) == []


async def test_enqueue_is_accepted_while_the_broker_is_down_and_published_once_it_is_back(
    database_url: str, broker_url: str
) -> None:
    clock = FakeClock(START)
    down = backend_on(database_url, UNREACHABLE, clock)
    try:
        # Given a broker nobody can reach: enqueueing still works, the message waits
        job_id = await down.jobs.enqueue(Recorder.record, 7)
        with pytest.raises(Exception):  # noqa: B017 - whatever the client raises
            await down.relay.publish_pending()
        assert outbox_rows(down) == [("default", False)]
    finally:
        await down.close()

    # When the broker is reachable again
    back = backend_on(database_url, broker_url, clock)
    try:
        published = await back.relay.publish_pending()
        ran = await back.worker(server_id="w").run_once()
        view = await back.jobs.get(job_id)
    finally:
        await back.close()

    # Then the backlog is published and the job runs
    assert published == {"default": 1}
    assert ran == 1
    assert view is not None and view.state is JobState.SUCCEEDED


async def test_a_duplicate_message_runs_the_job_once(backend: DramatiqBackend) -> None:
    job_id = await backend.jobs.enqueue(Recorder.record, 1)
    await backend.relay.publish_pending()
    backend.queues.publish([OutboxMessage(job_id, "default")])  # the same message again
    worker = backend.worker(server_id="w")

    first = await worker.run_once()
    second = await worker.run_once()

    assert (first, second) == (1, 0)
    assert Journal.values("record") == [1]


async def test_the_message_of_a_deleted_job_is_dropped(backend: DramatiqBackend) -> None:
    job_id = await backend.jobs.enqueue(Recorder.record, 1)
    await backend.relay.publish_pending()
    await backend.jobs.delete(job_id)

    ran = await backend.worker(server_id="w").run_once()

    assert ran == 0
    assert Journal.values("record") == []
    assert outbox_rows(backend) == []


async def test_a_message_the_broker_lost_is_published_again(
    backend: DramatiqBackend, broker_url: str
) -> None:
    # Given a job whose message went out, then vanished from the broker
    await backend.jobs.enqueue(Recorder.record, 1)
    await backend.relay.publish_pending()
    broker = create_broker(broker_url)
    broker.flush(backend.queues.declare("default"))
    broker.close()
    worker = backend.worker(server_id="w")
    assert await worker.run_once() == 0

    # When the redelivery time has passed
    assert isinstance(backend.context.clock, FakeClock)
    backend.context.clock.advance(backend.relay.settings.redeliver_after * 2)
    redelivered = await backend.relay.redeliver_stale()

    # Then the job gets a new message and runs
    assert redelivered == 1
    assert await worker.run_once() == 1
    assert Journal.values("record") == [1]


async def test_a_job_released_on_stop_gets_a_new_message(backend: DramatiqBackend) -> None:
    # Given a claimed job handed back to the queue (a server stopping)
    job_id = await backend.jobs.enqueue(Recorder.record, 1)
    await backend.relay.publish_pending()
    claims = await backend.outbox.claim_delivered(
        [job_id], now=START, lease=dt.timedelta(seconds=30), server_id="w"
    )
    assert [claim.job.id for claim in claims] == [job_id]
    await backend.outbox.release(
        [(job_id, claims[0].token)], now=START, reason="released: server stopping"
    )

    # Then it is announced again, and runs
    assert outbox_rows(backend) == [("default", False)]
    assert await backend.worker(server_id="w").run_once() == 1
    assert Journal.values("record") == [1]


async def test_a_job_enqueued_before_the_switch_from_sql_gets_a_message_at_the_sweep(
    backend: DramatiqBackend,
) -> None:
    # Given a job the `sql` backend enqueued on the same database (no outbox row)
    sql = SqlBackend(dataclasses.replace(backend.context, options={}))
    try:
        job_id = await sql.jobs.enqueue(Recorder.record, 5)
    finally:
        await sql.close()
    assert outbox_rows(backend) == []

    # When the sweep for lost messages runs, the redelivery time past
    assert isinstance(backend.context.clock, FakeClock)
    backend.context.clock.advance(backend.relay.settings.redeliver_after * 2)
    announced = await backend.relay.redeliver_stale()

    # Then the job gets a message and runs
    assert announced == 1
    assert await backend.worker(server_id="w").run_once() == 1
    view = await backend.jobs.get(job_id)
    assert view is not None and view.state is JobState.SUCCEEDED


def test_messages_a_vanished_redis_consumer_held_go_to_another() -> None:
    """A worker killed with prefetched messages: on Redis they wait in its acknowledgement set
    until its heartbeat is old enough for another consumer's dead-consumer check."""
    reachable_broker("redis").close()
    empty_queues("redis", ["vanished"])
    queue = f"{SESSION_PREFIX}vanished"
    message = OutboxMessage(JobId(uuid.uuid4()), "vanished")
    gone, alive = create_broker(BROKER_URLS["redis"]), create_broker(BROKER_URLS["redis"])
    try:
        BrokerQueues(gone, prefix=SESSION_PREFIX).publish([message])
        held = first_message(gone.consume(queue, prefetch=1, timeout=100), within=10)
        gone.close()  # never acknowledged, and no more heartbeats: as after kill -9
        BrokerQueues(alive, prefix=SESSION_PREFIX).declare("vanished")
        again = first_message(alive.consume(queue, prefetch=1, timeout=100), within=30)
    finally:
        alive.close()
    assert held is not None
    assert job_id_of(held) == message.job_id
    assert again is not None  # dramatiq's own default (60 s) would leave it stranded here
    assert job_id_of(again) == message.job_id


def first_message(consumer: Consumer, *, within: float) -> MessageProxy | None:
    """The first message the consumer receives within `within` seconds (a bound for a broken
    run, not a timing goal), or None."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (message := next(consumer)) is not None:
            return message
    return None
