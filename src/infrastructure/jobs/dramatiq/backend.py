"""The dramatiq backend (`APP_JOBS__BACKEND=dramatiq`): job state in the SQL store of
`APP_DB__URL`, delivery by a dramatiq broker (RabbitMQ or Redis).

Jobs, history, continuations, batches, unique keys and recurring jobs are the SQL backend's,
so the API, the CLI and the dashboard show the same thing whichever backend runs. What
changes is how a worker learns of work: from a message on the broker, written to the outbox
in the transaction that enqueued the job and published by the relay, instead of polling.

Its own settings are `OPTIONS` (`APP_JOBS__OPTIONS__<NAME>`, docs/dramatiq.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Mapping

import sqlalchemy as sa
from dramatiq import Broker

from application.jobs import JobAdmin
from infrastructure.jobs.backend import (
    BackendContext,
    BackendError,
    Loop,
    Role,
    default_server_id,
)
from infrastructure.jobs.dramatiq.broker import (
    BrokerProbe,
    BrokerQueues,
    BrokerUrlError,
    create_broker,
)
from infrastructure.jobs.dramatiq.delivery import DeliveredClaims
from infrastructure.jobs.dramatiq.outbox import OutboxStore
from infrastructure.jobs.dramatiq.relay import Relay, RelaySettings
from infrastructure.jobs.dramatiq.triggers import TriggerConsumer, TriggerError, parse_triggers
from infrastructure.jobs.engine.worker import Worker
from infrastructure.jobs.sql.backend import SqlBackend

OPTIONS = {
    "BROKER_URL": "`amqp://user:password@host:5672/vhost` or `redis://host:6379/0` (required)",
    "QUEUE_PREFIX": "put before every queue name on the broker (default none)",
    "REDELIVER_SECONDS": "a job still enqueued this long after its message went out, or "
    "with none, gets another (default 300; the broker may have lost the first)",
    "TRIGGERS": 'event triggers (RabbitMQ): a JSON list of {"exchange", "routing_key", '
    '"handler"}; each message on the exchange with the routing key enqueues the handler with '
    "the JSON body as its arguments (default none)",
    "DELIVERY_WAIT_SECONDS": "how long a claim waits for messages this process published to "
    "arrive (default 0; for driving a worker by hand with `run_once`, as tests do)",
}
"""The backend's own settings, `APP_JOBS__OPTIONS__<NAME>`: name -> meaning."""

PREFETCH_PER_SLOT = 1
"""Messages a queue's consumer holds per job slot (unacknowledged until claimed: a worker
killed holding them delays those jobs until the broker, or the redelivery sweep, sends them
again)."""


class DramatiqBackend(SqlBackend):
    def __init__(self, context: BackendContext) -> None:
        options = {name.lower(): value for name, value in context.options.items()}
        if unknown := sorted(set(options) - {name.lower() for name in OPTIONS}):
            known = ", ".join(OPTIONS)
            raise BackendError(f"unknown dramatiq option(s) {', '.join(unknown)}; known: {known}")
        self._delivery_wait = _seconds(options, "delivery_wait_seconds", "0", allow_zero=True)
        self.queues = BrokerQueues(
            _broker_of(options),
            prefix=options.get("queue_prefix", ""),
            track_in_flight=self._delivery_wait > 0,
        )
        self._probe = BrokerProbe(options["broker_url"])
        super().__init__(context)
        self.relay = Relay(
            self.outbox,
            self.queues.publish,
            context.clock,
            RelaySettings(
                redeliver_after=dt.timedelta(seconds=_seconds(options, "redeliver_seconds", "300"))
            ),
        )
        self._claims: list[DeliveredClaims] = []
        self.triggers = _triggers_of(options, self.admin)

    def store_on(self, database: sa.Engine) -> OutboxStore:
        return OutboxStore(database, schema=self._schema, prefix=self._prefix)

    @property
    def outbox(self) -> OutboxStore:
        assert isinstance(self.store, OutboxStore)
        return self.store

    def worker(self, *, server_id: str | None = None) -> Worker:
        """A worker whose claims come from the broker's messages (see `delivery.py`)."""
        settings = self.context.worker
        claims = DeliveredClaims(
            self.outbox,
            self.queues,
            self.relay,
            self.context.clock,
            prefetch=PREFETCH_PER_SLOT * settings.concurrency,
            delivery_wait=self._delivery_wait,
        )
        self._claims.append(claims)
        return Worker(
            claims,
            self.executor,
            self.context.clock,
            server_id=server_id or default_server_id(),
            settings=settings,
            middleware=self.middleware,
        )

    def loops(self, roles: Collection[Role]) -> list[Loop]:
        """The relay runs in every process (the API's enqueues are published from there)."""
        loops = [self.relay.run, *super().loops(roles)]
        if self.triggers is not None and Role.WORKER in roles:
            loops.append(self.triggers.run)
        return loops

    async def delivery_problem(self) -> str | None:
        """A broker that cannot be reached leaves jobs enqueued but unannounced, so this
        process is not ready (checked at most every few seconds, see `BrokerProbe`)."""
        return await self._probe.problem()

    async def close(self) -> None:
        for claims in self._claims:
            await claims.close()
        await super().close()
        await asyncio.to_thread(self.queues.broker.close)


def _triggers_of(options: Mapping[str, str], admin: JobAdmin) -> TriggerConsumer | None:
    if "triggers" not in options:
        return None
    url = options["broker_url"]
    if not url.lower().startswith(("amqp://", "amqps://")):
        raise BackendError("APP_JOBS__OPTIONS__TRIGGERS needs a RabbitMQ broker (amqp://)")
    try:
        triggers = parse_triggers(options["triggers"])
    except TriggerError as exc:
        raise BackendError(f"APP_JOBS__OPTIONS__TRIGGERS: {exc}") from exc
    return TriggerConsumer(url, options.get("queue_prefix", ""), triggers, admin)


def _broker_of(options: Mapping[str, str]) -> Broker:
    url = options.get("broker_url")
    if not url:
        raise BackendError(
            "the dramatiq backend needs APP_JOBS__OPTIONS__BROKER_URL (amqp://... or redis://...)"
        )
    try:
        return create_broker(url)
    except BrokerUrlError as exc:
        raise BackendError(f"APP_JOBS__OPTIONS__BROKER_URL: {exc}") from exc


def _seconds(
    options: Mapping[str, str], name: str, default: str, *, allow_zero: bool = False
) -> float:
    """A number of seconds among the options (positive, or also 0 with `allow_zero`)."""
    raw = options.get(name, default)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds == float("inf"):
        raise BackendError(
            f"APP_JOBS__OPTIONS__{name.upper()} must be a number of seconds: {raw!r}"
        )
    return seconds
