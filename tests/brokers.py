"""Real brokers for tests: RabbitMQ and Redis on 127.0.0.1.

Each test session gets a queue-name prefix of its own, so parallel runs on one broker never
see each other's messages; each test starts from empty queues. A broker that cannot be
reached skips its tests locally and fails them when `CI` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import NoReturn

import pytest
from dramatiq import Broker

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
            broker.flush(declared.declare(queue))
    finally:
        broker.close()
