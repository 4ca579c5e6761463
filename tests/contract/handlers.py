"""Job handlers the contract suite runs. What they saw is recorded on `Journal`, reset per test."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel

from application.jobs import DoNotRetry, JobContext, RetryPolicy
from domain.errors import NotFound
from infrastructure.jobs.handlers import HandlerRegistry

WAIT_LIMIT = 10.0
"""Upper bound for any wait inside a handler, so a broken test cannot hang a thread."""


class Journal:
    """What the handlers did in the current test. Sync handlers write from worker threads."""

    calls: ClassVar[list[tuple[str, object]]] = []
    received: ClassVar[dict[str, object]] = {}
    started: ClassVar[defaultdict[str, asyncio.Event]] = defaultdict(asyncio.Event)
    gates: ClassVar[defaultdict[str, asyncio.Event]] = defaultdict(asyncio.Event)
    thread_started: ClassVar[threading.Event] = threading.Event()
    thread_saw_cancel: ClassVar[threading.Event] = threading.Event()
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.calls = []
        cls.received = {}
        cls.started = defaultdict(asyncio.Event)
        cls.gates = defaultdict(asyncio.Event)
        cls.thread_started = threading.Event()
        cls.thread_saw_cancel = threading.Event()

    @classmethod
    def add(cls, name: str, value: object) -> None:
        with cls.lock:
            cls.calls.append((name, value))

    @classmethod
    def names(cls) -> list[str]:
        return [name for name, _ in cls.calls]

    @classmethod
    def values(cls, name: str) -> list[object]:
        return [value for called, value in cls.calls if called == name]


class Color(Enum):
    RED = "red"
    GREEN = "green"


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Money(BaseModel):
    amount: Decimal
    currency: str


class Recorder:
    """Plain handlers without dependencies."""

    def record(self, value: int) -> int:
        Journal.add("record", value)
        return value * 2

    async def record_async(self, value: int) -> int:
        Journal.add("record_async", value)
        return value * 3

    def pair(self, first: str, second: str) -> None:
        Journal.add("pair", (first, second))

    def with_port_names(self, queue: str, timezone: str) -> None:
        Journal.add("with_port_names", (queue, timezone))

    def anything(self, value: Any) -> None:
        Journal.add("anything", value)

    def typed(
        self,
        text: str,
        number: int,
        ratio: float,
        flag: bool,
        nothing: None,
        items: list[int],
        mapping: dict[str, float],
        when: dt.datetime,
        day: dt.date,
        ident: UUID,
        amount: Decimal,
        color: Color,
        point: Point,
        money: Money,
    ) -> None:
        Journal.received = {
            "text": text,
            "number": number,
            "ratio": ratio,
            "flag": flag,
            "nothing": nothing,
            "items": items,
            "mapping": mapping,
            "when": when,
            "day": day,
            "ident": ident,
            "amount": amount,
            "color": color,
            "point": point,
            "money": money,
        }

    def stamp(self, when: dt.datetime, ident: UUID) -> None:
        """Parameters an operator sends as JSON strings."""
        Journal.add("stamp", (when, ident))

    def fail(self, message: str) -> None:
        Journal.add("fail", message)
        raise RuntimeError(message)

    async def fail_async(self, message: str) -> None:
        Journal.add("fail_async", message)
        raise ValueError(message)

    def give_up(self, message: str) -> None:
        Journal.add("give_up", message)
        raise DoNotRetry(message)

    async def remind(self, invoice_id: UUID) -> None:
        """A handler whose business record is gone."""
        Journal.add("remind", invoice_id)
        raise NotFound(invoice_id)


class Registered:
    """A handler whose registration sets the queue, retry policy and timeout."""

    def on_low(self, value: int) -> None:
        Journal.add("on_low", value)

    def failing_on_low(self, value: int) -> None:
        Journal.add("failing_on_low", value)
        raise RuntimeError("always fails")


class Blocking:
    """Async handlers that wait on a named gate, for tests that act while a job runs."""

    async def hold(self, label: str) -> str:
        Journal.add("started", label)
        Journal.started[label].set()
        try:
            await Journal.gates[label].wait()
        except asyncio.CancelledError:
            Journal.add("cancelled", label)
            raise
        Journal.add("finished", label)
        return label


class Contextual:
    """Handlers that ask for the running job's context."""

    def __init__(self, context: JobContext) -> None:
        self.context = context

    async def inspect(self, note: str) -> None:
        self.context.logger.info("working on %s", note)
        self.context.report_progress(40)
        Journal.add("inspect", (self.context.job_id, self.context.attempt))
        Journal.started["inspect"].set()
        await Journal.gates["inspect"].wait()
        self.context.logger.warning("done with %s", note)

    def inspect_sync(self, note: str) -> None:
        self.context.logger.info("sync work on %s", note)
        self.context.report_progress(75)
        Journal.add("inspect_sync", (self.context.job_id, self.context.attempt))

    def flaky(self, succeed_on: int) -> int:
        Journal.add("flaky", self.context.attempt)
        self.context.logger.info("attempt %d", self.context.attempt)
        if self.context.attempt < succeed_on:
            raise RuntimeError(f"attempt {self.context.attempt} fails")
        return self.context.attempt

    def poll_until_cancelled(self) -> None:
        """A sync handler: it cannot be interrupted, so it watches `context.cancelled`."""
        Journal.thread_started.set()
        stop = threading.Event()
        for _ in range(int(WAIT_LIMIT / 0.01)):
            if self.context.cancelled:
                Journal.add("saw_cancel", self.context.job_id)
                Journal.thread_saw_cancel.set()
                return
            stop.wait(0.01)


class Fresh:
    """Counts its own executions: more than 1 would mean an instance was reused."""

    def __init__(self) -> None:
        self.runs = 0

    def run(self) -> int:
        self.runs += 1
        Journal.add("fresh", self.runs)
        return self.runs


HOSTILE = "nul\x00 lone\udc80 url postgresql://app:s3cret@db:5432/jobs password=hunter2"
"""Text a handler may produce that no database stores as it is, with credentials in it."""
HOSTILE_STORED = "nul\\x00 lone\\udc80 url postgresql://app:***@db:5432/jobs password=***"
"""`HOSTILE` as error and log text is stored: escaped and redacted."""
HOSTILE_ESCAPED = HOSTILE.replace("\x00", "\\x00").replace("\udc80", "\\udc80")
"""`HOSTILE` as a result is stored: escaped (a result is data: nothing is redacted)."""


class Hostile:
    """Handlers whose text or results a store cannot take as they are."""

    def __init__(self, context: JobContext) -> None:
        self.context = context

    def raise_text(self) -> None:
        self.context.logger.warning("log %s", HOSTILE)
        raise RuntimeError(HOSTILE)

    def raise_long(self) -> None:
        self.context.logger.info("é" * 100_000)  # 200,000 bytes of UTF-8
        raise RuntimeError("é" * 100_000)

    def return_text(self) -> dict[str, str]:
        return {f"key {HOSTILE}": HOSTILE}

    def return_value(self, kind: str) -> object:
        Journal.add("return_value", kind)
        if kind == "cyclic":
            cyclic: list[object] = []
            cyclic.append(cyclic)
            return cyclic
        if kind == "deep":
            deep: list[object] = []
            for _ in range(5000):
                deep = [deep]
            return deep
        if kind == "big":
            return "é" * 40_000  # 80,000 bytes of UTF-8 in JSON
        return float(kind)  # "nan", "inf"


class Unregistered:
    """Never registered with the suite's registry."""

    def run(self, value: int) -> None:
        Journal.add("unregistered", value)


LOW_RETRY = RetryPolicy(attempts=2, delays=(5,))


def build_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    for handler in (
        Recorder.record,
        Recorder.record_async,
        Recorder.pair,
        Recorder.with_port_names,
        Recorder.anything,
        Recorder.typed,
        Recorder.stamp,
        Recorder.fail,
        Recorder.fail_async,
        Recorder.give_up,
        Recorder.remind,
        Blocking.hold,
        Contextual.inspect,
        Contextual.inspect_sync,
        Contextual.flaky,
        Contextual.poll_until_cancelled,
        Fresh.run,
        Hostile.raise_text,
        Hostile.raise_long,
        Hostile.return_text,
        Hostile.return_value,
    ):
        registry.register(handler)
    registry.register(Registered.on_low, queue="low", retry=LOW_RETRY)
    registry.register(Registered.failing_on_low, queue="low", retry=LOW_RETRY)
    return registry
