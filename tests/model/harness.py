"""What the model-based test drives: one engine per store, assembled by hand, and its handler.

All engine assembly is in `assemble`, so that moving the engine's modules means editing one
function.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from application.jobs import JobContext, JobService
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.store import JobStore
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry

START = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)
QUEUES = ("default", "low")
LEASE = dt.timedelta(seconds=30)
CLAIM_ALL = 10_000
"""Claim limit of the worker (and of a crashing worker): far above the jobs an example
creates, so every claim takes all ready jobs and which jobs a claim takes never depends on how
a store orders jobs with the same `state_at` (the port leaves that open)."""


class Steps:
    """The one handler of the model: deterministic, its outcome follows from its arguments
    and the attempt."""

    def __init__(self, context: JobContext) -> None:
        self.context = context

    async def run(self, fails: int, returns_value: bool) -> int | None:
        """Fail on the first `fails` attempts, then succeed; return the attempt, or None (a
        success without a result takes the SQL store's batched finish path)."""
        if self.context.attempt <= fails:
            raise RuntimeError(f"attempt {self.context.attempt} fails")
        return self.context.attempt if returns_value else None


@dataclass
class ModelEngine:
    """A whole engine over one store, driven by hand with a fake clock."""

    clock: FakeClock
    store: JobStore
    jobs: JobService
    executor: Executor
    worker: Worker
    scheduler: Scheduler
    watchdog: Watchdog

    def close(self) -> None:
        """Stop the handler threads; the store belongs to the caller."""
        self.executor.shutdown()


def assemble(store: JobStore) -> ModelEngine:
    clock = FakeClock(START)
    registry = HandlerRegistry()
    registry.register(Steps.run)
    executor = Executor(registry)
    worker = Worker(
        store,
        executor,
        clock,
        server_id="worker",
        settings=WorkerSettings(queues=QUEUES, concurrency=CLAIM_ALL, lease=LEASE),
        rng=random.Random(0),  # unused: every retry policy has explicit delays
    )
    return ModelEngine(
        clock=clock,
        store=store,
        jobs=EngineJobService(store, registry, clock),
        executor=executor,
        worker=worker,
        scheduler=Scheduler(store, clock),
        watchdog=Watchdog(store, clock, WatchdogSettings()),
    )
