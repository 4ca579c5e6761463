"""Real brokers for tests: RabbitMQ and Redis on 127.0.0.1.

Each test session gets a queue-name prefix of its own, so parallel runs on one broker never
see each other's messages; each test starts from empty queues. A broker that cannot be
reached skips its tests locally and fails them when `CI` is set. At the end of the session
its queues are deleted (`delete_session_queues`), so runs leave no durable queue behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from typing import NoReturn

import pika
import pytest
import redis
from dramatiq import Broker
from dramatiq.common import dq_name, xq_name

from infrastructure.jobs.dramatiq.broker import BrokerQueues, create_broker
from tests.databases import IN_CI

BROKER_URLS = {
    "rabbitmq": os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "redis": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
}
SESSION_PREFIX = f"jobs-test-{uuid.uuid4().hex[:10]}."
"""This test session's queue-name prefix on every broker."""
HAND_DRIVEN = {"DELIVERY_WAIT_SECONDS": "5"}
"""The dramatiq backend's options for tests that run a worker with `run_once` right after an
enqueue: a claim waits (up to 5 s) for the messages this process published."""


_session_queues: dict[str, set[str]] = {}
"""The queues this session declared on each kind of broker (full names, prefix included)."""


def remember_queues(kind: str, names: Iterable[str]) -> None:
    """Note queues of this session on a broker, for `delete_session_queues`."""
    _session_queues.setdefault(kind, set()).update(names)


def delete_session_queues() -> None:
    """Delete what this session left on the brokers it used: on RabbitMQ its queues (with
    dramatiq's delay and dead-letter queues), on Redis every key naming its prefix. RabbitMQ
    cannot list queues over AMQP, hence the names remembered."""
    if names := _session_queues.pop("rabbitmq", set()):
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URLS["rabbitmq"]))
        with contextlib.closing(connection):
            channel = connection.channel()
            for name in sorted(names):
                for queue in (name, dq_name(name), xq_name(name)):
                    channel.queue_delete(queue)  # absent: deleted already, fine
    if _session_queues.pop("redis", None) is not None:
        client = redis.Redis.from_url(BROKER_URLS["redis"])
        with contextlib.closing(client):
            for key in client.scan_iter(match=f"dramatiq:*{SESSION_PREFIX}*", count=1000):
                client.delete(key)


def unreachable(kind: str, error: Exception) -> NoReturn:
    reason = f"{kind} is not reachable at {BROKER_URLS[kind]}: {error}"
    if IN_CI:
        pytest.fail(f"{reason} (CI needs every service)")
    pytest.skip(reason)


def reachable_broker(kind: str) -> Broker:
    """A broker of `kind` that answered, or the test is skipped (failed in CI)."""
    broker = create_broker(BROKER_URLS[kind])
    try:
        queues = BrokerQueues(broker, prefix=SESSION_PREFIX)
        remember_queues(kind, [queues.name_of("probe")])
        broker.flush(queues.declare("probe"))
    except Exception as error:
        broker.close()
        unreachable(kind, error)
    return broker


def empty_queues(kind: str, queues: Iterable[str]) -> None:
    """Drop every message on this session's queues of these names."""
    broker = create_broker(BROKER_URLS[kind])
    try:
        declared = BrokerQueues(broker, prefix=SESSION_PREFIX)
        for queue in queues:
            remember_queues(kind, [declared.name_of(queue)])
            broker.flush(declared.declare(queue))
    finally:
        broker.close()
