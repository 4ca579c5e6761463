"""Event triggers: messages that other services publish to a RabbitMQ exchange enqueue a job.

Each trigger binds a queue of ours (`<prefix>trigger.<handler>`) to an exchange with a routing
key. A message's JSON body is the handler's arguments (an array: positional; an object:
keyword), checked like any enqueue. A message that cannot become a job (not JSON, arguments
that do not fit, an unknown handler) goes to the dead-letter queue
(`<prefix>trigger.<handler>.dead`) with the reason in its `x-death-reason` header, and is
acknowledged: never lost, never retried forever. When the job store fails, the message is
handed back to RabbitMQ and tried again after a pause.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import sqlalchemy as sa
from pika.adapters.blocking_connection import BlockingChannel

from application.jobs import JobAdmin, JSONValue

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
RETRY_SECONDS = 1.0
UNAVAILABLE = (sa.exc.DBAPIError, OSError, TimeoutError)
"""Failures of the job store that pass: the message is kept and tried again. Anything else
means this message cannot become a job (bad JSON, arguments, handler): it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class Trigger:
    exchange: str
    routing_key: str
    handler: str


class TriggerError(ValueError):
    """The triggers' configuration is not what `parse_triggers` expects."""


def parse_triggers(raw: str) -> list[Trigger]:
    """`[{"exchange": ..., "routing_key": ..., "handler": ...}, ...]` as JSON.

    Raises:
        TriggerError: not such a list.
    """
    try:
        found = json.loads(raw)
        return [
            Trigger(str(t["exchange"]), str(t["routing_key"]), str(t["handler"])) for t in found
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise TriggerError(
            'TRIGGERS must be a JSON list of {"exchange", "routing_key", "handler"}'
        ) from exc


def arguments_of(body: bytes) -> tuple[list[JSONValue], dict[str, JSONValue]]:
    """A message body as positional or keyword arguments.

    Raises:
        ValueError: not JSON, or neither an array nor an object.
    """
    value = json.loads(body)
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict):
        return [], value
    raise ValueError("the body must be a JSON array (arguments) or object (keyword arguments)")


class TriggerConsumer:
    """Consumes the triggers' queues in a thread of its own and enqueues through `admin` on
    the event loop that runs `run`."""

    def __init__(self, url: str, prefix: str, triggers: list[Trigger], admin: JobAdmin) -> None:
        self._parameters = pika.URLParameters(url)
        self._prefix = prefix
        self._triggers = triggers
        self._admin = admin

    def queue_of(self, trigger: Trigger) -> str:
        return f"{self._prefix}trigger.{trigger.handler}"

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; reconnect after a failure."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        consuming = asyncio.ensure_future(asyncio.to_thread(self._consume, loop, stop))
        try:
            await asyncio.wait(
                {consuming, asyncio.ensure_future(stopping.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop.set()
            await asyncio.wait({consuming})

    def declare(self, channel: BlockingChannel) -> None:
        """The triggers' exchanges (topic, durable), queues, bindings and dead-letter queues."""
        for trigger in self._triggers:
            queue = self.queue_of(trigger)
            channel.exchange_declare(trigger.exchange, exchange_type="topic", durable=True)
            channel.queue_declare(queue, durable=True)
            channel.queue_declare(f"{queue}.dead", durable=True)
            channel.queue_bind(queue, trigger.exchange, routing_key=trigger.routing_key)

    def _consume(self, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with pika.BlockingConnection(self._parameters) as connection:
                    channel = connection.channel()
                    channel.basic_qos(prefetch_count=1)
                    self.declare(channel)
                    for trigger in self._triggers:
                        callback = self._on_message(trigger, channel, loop)
                        channel.basic_consume(self.queue_of(trigger), callback)
                    while not stop.is_set():
                        connection.process_data_events(time_limit=POLL_SECONDS)
            except Exception:
                logger.warning(
                    "consuming event triggers failed; reconnecting",
                    exc_info=True,
                    extra={"action": "trigger_consumer_failed"},
                )
                stop.wait(RETRY_SECONDS)

    def _on_message(
        self, trigger: Trigger, channel: BlockingChannel, loop: asyncio.AbstractEventLoop
    ) -> Callable[..., None]:
        def handle(_channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
            try:
                args, kwargs = arguments_of(body)
                enqueue = self._admin.enqueue(trigger.handler, args, kwargs)
                job_id = asyncio.run_coroutine_threadsafe(enqueue, loop).result()
            except UNAVAILABLE:
                logger.warning(
                    "enqueueing a triggered job failed; the message is kept", exc_info=True
                )
                channel.basic_nack(method.delivery_tag, requeue=True)
                threading.Event().wait(RETRY_SECONDS)
                return
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self._dead_letter(channel, trigger, body, properties, reason)
            else:
                logger.info(
                    "event on %s %s enqueued job %s",
                    trigger.exchange,
                    trigger.routing_key,
                    job_id,
                    extra={"action": "trigger_enqueued", "job_id": str(job_id)},
                )
            channel.basic_ack(method.delivery_tag)

        return handle

    def _dead_letter(
        self,
        channel: BlockingChannel,
        trigger: Trigger,
        body: bytes,
        properties: Any,
        reason: str,
    ) -> None:
        headers = dict(getattr(properties, "headers", None) or {})
        headers.update({"x-death-reason": reason[:1000], "x-trigger-handler": trigger.handler})
        channel.basic_publish(
            exchange="",
            routing_key=f"{self.queue_of(trigger)}.dead",
            body=body,
            properties=pika.BasicProperties(headers=headers, delivery_mode=2),
        )
        logger.warning(
            "event on %s %s refused: %s",
            trigger.exchange,
            trigger.routing_key,
            reason,
            extra={"action": "trigger_dead_lettered", "handler": trigger.handler},
        )
