"""The dramatiq broker of a URL, and the messages that name jobs on it.

`amqp://` (or `amqps://`) is RabbitMQ, with publisher confirms; `redis://` (or `rediss://`)
is Redis. The broker carries none of dramatiq's default middleware: our engine owns retries
(`Retries`), time limits (`TimeLimit`) and message age (`AgeLimit`), so theirs never act on
these messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import pika
import redis
from dramatiq import Broker, Message, MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from application.jobs import JobId
from infrastructure.jobs.dramatiq.outbox import OutboxMessage

ACTOR_NAME = "jobs_service_run"
"""The actor every message names: run the job whose id is the only argument."""


REDIS_HEARTBEAT_TIMEOUT_MS = 3_000
"""A Redis consumer silent this long counts as dead and its unacknowledged messages (prefetched,
not yet claimed) go back to the queue (dramatiq's default, 60 s, left them stranded that long
after a kill -9; RabbitMQ returns them at once). A live worker mistaken for dead costs only a
duplicate message, which claims nothing."""
REDIS_MAINTENANCE_CHANCE = 50_000
"""Out of a million broker commands, those that also look for dead consumers (5 %, against
dramatiq's 0.1 %, so the check above runs every few seconds rather than every minute)."""


class BrokerUrlError(ValueError):
    """The broker URL names no broker this adapter knows."""


def create_broker(url: str) -> Broker:
    """The broker of `url`, connecting lazily (an unreachable broker fails on first use).

    Raises:
        BrokerUrlError: the scheme is neither amqp(s) nor redis(s).
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("amqp", "amqps"):
        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=[])
    if scheme in ("redis", "rediss"):
        return RedisBroker(  # type: ignore[no-untyped-call]
            url=url,
            middleware=[],
            heartbeat_timeout=REDIS_HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=REDIS_MAINTENANCE_CHANCE,
        )
    raise BrokerUrlError(f"broker URL must start with amqp:// or redis://, not {scheme!r}://")


class BrokerProbe:
    """Whether the broker of a URL answers: a fresh connection of its own, opened with a short
    timeout (not the consumers' or the publisher's, which may be busy or reconnecting), whose
    answer is kept `cache_seconds` so a readiness endpoint polled often stays cheap."""

    def __init__(self, url: str, *, timeout: float = 2.0, cache_seconds: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._answer: tuple[float, str | None] | None = None
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        """None when the broker answered, else why it did not (cached)."""
        async with self._lock:  # concurrent readiness checks share one connection attempt
            if self._answer is None or time.monotonic() - self._answer[0] >= self._cache_seconds:
                self._answer = (time.monotonic(), await asyncio.to_thread(self._connect))
            return self._answer[1]

    def _connect(self) -> str | None:
        try:
            if self._url.lower().startswith(("amqp://", "amqps://")):
                self._connect_rabbitmq()
            else:
                client = redis.Redis.from_url(
                    self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
                )
                with contextlib.closing(client):
                    client.ping()
        except Exception as exc:  # the reason is the answer, whatever it is
            reason = (str(exc).splitlines() or [""])[0] or repr(exc)
            return f"cannot reach the dramatiq broker: {type(exc).__name__}: {reason}"
        return None

    def _connect_rabbitmq(self) -> None:
        parameters = pika.URLParameters(self._url)
        parameters.connection_attempts = 1
        parameters.socket_timeout = self._timeout
        parameters.stack_timeout = self._timeout
        pika.BlockingConnection(parameters).close()


@dataclass(slots=True)
class BrokerQueues:
    """Our queues on a broker: names with a prefix (isolating services, or test runs, that
    share a broker), declared once. With `track_in_flight`, the messages published from this
    process are remembered until a consumer of this process receives them (see
    `DeliveredClaims`'s delivery wait)."""

    broker: Broker
    prefix: str = ""
    track_in_flight: bool = False
    _declared: set[str] = field(default_factory=set)
    _in_flight: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def name_of(self, queue: str) -> str:
        return f"{self.prefix}{queue}"

    def declare(self, queue: str) -> str:
        """The broker queue of a job queue, declared (a dramatiq broker only publishes to and
        consumes from queues declared on it)."""
        name = self.name_of(queue)
        with self._lock:
            if name not in self._declared:
                self.broker.declare_queue(name)
                self._declared.add(name)
        return name

    def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Send each message; return once the broker has them all (on RabbitMQ, confirmed).

        Raises:
            Exception: whatever the broker client raises when it cannot (down, refused).
        """
        for message in messages:
            sending: Message[object] = Message(
                queue_name=self.declare(message.queue),
                actor_name=ACTOR_NAME,
                args=(str(message.job_id),),
                kwargs={},
                options={},
            )
            if self.track_in_flight:  # before sending: it may arrive before the confirm
                with self._lock:
                    self._in_flight[sending.message_id] = (sending.queue_name, time.monotonic())
            self.broker.enqueue(sending)

    def received(self, message_id: str) -> None:
        if self.track_in_flight:
            with self._lock:
                self._in_flight.pop(message_id, None)

    def in_flight(self, queue_names: Collection[str], *, max_age: float) -> int:
        """Messages published from here to these queues within `max_age` seconds and not
        received here yet (older ones went to another process, or are forgotten)."""
        oldest = time.monotonic() - max_age
        with self._lock:
            self._in_flight = {m: sent for m, sent in self._in_flight.items() if sent[1] >= oldest}
            return sum(queue in queue_names for queue, _ in self._in_flight.values())


def job_id_of(message: Message[object] | MessageProxy) -> JobId | None:
    """The job a message names; None for a message that names none (not ours)."""
    if message.actor_name != ACTOR_NAME or len(message.args) != 1:
        return None
    try:
        return JobId(UUID(str(message.args[0])))
    except ValueError:
        return None
