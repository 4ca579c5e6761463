"""Consumption: the worker's claims come from the broker's messages.

A `Receiver` consumes one broker queue through dramatiq's consumer in a thread of its own and
buffers what arrives. `DeliveredClaims` is what our `Worker` claims through: it takes the
buffered messages of the worker's queues in priority order, claims the jobs they name by id
with a lease (as SQL workers claim), and acknowledges every message once the claim commits.
A duplicate or stale message (the job ran, was deleted, or is held by another worker) claims
nothing and is dropped. From there the job runs as on SQL: the same execution core, lease
heartbeats, outcome, retries and graceful stop, so dramatiq never retries or times it out.
At-least-once comes from the lease: a worker killed mid-job leaves it `processing` until the
watchdog's rescue enqueues it again, which writes a new message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from uuid import UUID

from dramatiq import Broker, Consumer, MessageProxy

from application.jobs import JobId
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.dramatiq.broker import BrokerQueues, job_id_of
from infrastructure.jobs.dramatiq.outbox import OutboxStore
from infrastructure.jobs.dramatiq.relay import Relay
from infrastructure.jobs.engine.model import Claim, Finish, Output, ServerInfo

logger = logging.getLogger(__name__)

RECEIVE_TIMEOUT_MS = 100
"""How long a consumer waits for a message before it looks at stop and pending acks."""
RECONNECT_SECONDS = 1.0


class Receiver:
    """One broker queue's consumer, running in its own thread until `stop`."""

    def __init__(
        self,
        broker: Broker,
        queue_name: str,
        *,
        prefetch: int,
        arrived: Callable[[MessageProxy], None],
    ) -> None:
        self._broker = broker
        self.queue_name = queue_name
        self._prefetch = prefetch
        self._arrived = arrived
        self._buffer: collections.deque[tuple[MessageProxy, Consumer]] = collections.deque()
        self._acks: collections.deque[tuple[MessageProxy, Consumer]] = collections.deque()
        self._stopping = threading.Event()
        self._failures = 0
        """Consecutive failures to consume (only the first is a warning)."""
        self._thread = threading.Thread(target=self._receive, name=f"receive {queue_name}")
        self._thread.daemon = True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        self._thread.start()

    def take(self, limit: int) -> list[tuple[MessageProxy, Consumer]]:
        taken: list[tuple[MessageProxy, Consumer]] = []
        while len(taken) < limit and self._buffer:
            taken.append(self._buffer.popleft())
        return taken

    def ack(self, messages: Sequence[tuple[MessageProxy, Consumer]]) -> None:
        """Acknowledge in the consumer's thread (a pika connection is not thread-safe)."""
        self._acks.extend(messages)

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except Exception:
                self._buffer.clear()  # unacked: the broker delivers them again
                self._acks.clear()
                self._failures += 1
                logger.log(  # the first failure in full; the retries, every second, quietly
                    logging.WARNING if self._failures == 1 else logging.DEBUG,
                    "consuming %s failed; reconnecting every %.0f s",
                    self.queue_name,
                    RECONNECT_SECONDS,
                    exc_info=True,
                    extra={"action": "consumer_failed", "queue": self.queue_name},
                )
                self._stopping.wait(RECONNECT_SECONDS)

    def _consume(self) -> None:
        consumer = self._broker.consume(
            self.queue_name, prefetch=self._prefetch, timeout=RECEIVE_TIMEOUT_MS
        )
        try:
            for message in consumer:
                self._failures = 0  # the broker answered
                self._send_acks()
                if self._stopping.is_set():
                    return
                if message is not None:
                    self._buffer.append((message, consumer))
                    self._arrived(message)
        finally:
            self._send_acks()
            consumer.close()

    def _send_acks(self) -> None:
        while self._acks:
            message, consumer = self._acks.popleft()
            try:
                consumer.ack(message)
            except Exception:  # its connection is gone: the broker delivers it again
                logger.debug("ack of a message on %s failed", self.queue_name, exc_info=True)


class DeliveredClaims:
    """The worker's `JobClaims` on the dramatiq backend: claims come from delivered messages,
    every other verb is the SQL store's."""

    def __init__(
        self,
        store: OutboxStore,
        queues: BrokerQueues,
        relay: Relay,
        clock: Clock,
        *,
        prefetch: int,
        delivery_wait: float = 0.0,
    ) -> None:
        """`delivery_wait`: how long a claim waits for the messages this process published
        and has not received yet (0: it takes what has arrived). Driving a worker by hand,
        `run_once` after an enqueue, needs it; a running worker wakes on arrival instead."""
        self._store = store
        self._clock = clock
        self._delivery_wait = delivery_wait
        self._queues = queues
        self._relay = relay
        self._prefetch = prefetch
        self._receivers: dict[str, Receiver] = {}
        self._arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        """Publish what this process left in the outbox, then claim the jobs named by up to
        `limit` delivered messages, queues in priority order, at the clock's time when they
        are taken (`now`, read before the publishing and the wait, may precede their enqueue)."""
        receivers = await self._receivers_of(queues)
        try:
            await self._relay.publish_pending()
        except Exception:  # the relay's loop reports it; what has arrived may still run
            logger.debug("publishing before a claim failed", exc_info=True)
        if self._delivery_wait > 0:
            await self._await_delivery(receivers, limit)
        messages: list[tuple[Receiver, MessageProxy, Consumer]] = []
        for receiver in receivers:
            messages += [(receiver, *taken) for taken in receiver.take(limit - len(messages))]
        if not messages:
            return []
        named = [job_id_of(message) for _, message, _ in messages]
        try:
            claims = await self._store.claim_delivered(
                [job_id for job_id in named if job_id is not None],
                now=self._clock.now(),  # not `now`: the messages may name jobs enqueued since
                lease=lease,
                server_id=server_id,
            )
        finally:  # also when the claim failed: its outbox rows stay, and are sent again
            for receiver, message, consumer in messages:
                receiver.ack([(message, consumer)])
        _log_dropped(len(messages) - len(claims))
        return claims

    async def wait_for_work(self, max_seconds: float) -> None:
        if any(receiver.buffered for receiver in self._receivers.values()):
            return
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), max_seconds)
        except TimeoutError:
            pass

    async def close(self) -> None:
        """Stop the consumers; messages not taken go back to the broker."""
        for receiver in self._receivers.values():
            receiver.stop()
        for receiver in self._receivers.values():
            await asyncio.to_thread(receiver.join, RECEIVE_TIMEOUT_MS / 1000 * 20)
        self._receivers.clear()

    async def _receivers_of(self, queues: Sequence[str]) -> list[Receiver]:
        """The queues' receivers (started on first use), in the queues' order."""
        self._loop = asyncio.get_running_loop()
        for queue in queues:
            if queue not in self._receivers:
                name = await asyncio.to_thread(self._queues.declare, queue)
                receiver = Receiver(
                    self._queues.broker, name, prefetch=self._prefetch, arrived=self._signal
                )
                receiver.start()
                self._receivers[queue] = receiver
        return [self._receivers[queue] for queue in queues]

    async def _await_delivery(self, receivers: Sequence[Receiver], limit: int) -> None:
        """Until `limit` messages are here, or none published from here is on its way."""
        names = {receiver.queue_name for receiver in receivers}
        deadline = time.monotonic() + self._delivery_wait
        while True:
            self._arrived.clear()
            buffered = sum(receiver.buffered for receiver in receivers)
            flying = self._queues.in_flight(names, max_age=self._delivery_wait)
            remaining = deadline - time.monotonic()
            if buffered >= limit or flying == 0 or remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _signal(self, message: MessageProxy) -> None:
        """Called from a receiver's thread."""
        self._queues.received(message.message_id)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._arrived.set)

    # --- the SQL store's verbs ----------------------------------------------------------
    async def extend(
        self, tokens: Sequence[tuple[JobId, UUID, Output]], *, now: dt.datetime, lease: dt.timedelta
    ) -> set[JobId]:
        return await self._store.extend(tokens, now=now, lease=lease)

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        return await self._store.finish(results, now=now)

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        await self._store.release(claims, now=now, reason=reason)

    async def heartbeat(self, server: ServerInfo) -> None:
        await self._store.heartbeat(server)

    async def remove_server(self, server_id: str) -> None:
        await self._store.remove_server(server_id)


def _log_dropped(count: int) -> None:
    if count:
        logger.debug(
            "%d duplicate or stale message(s) dropped",
            count,
            extra={"action": "messages_dropped"},
        )
