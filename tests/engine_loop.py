"""Driving the engine by hand in tests: no sleeps, the loops run until idle."""

from __future__ import annotations

import sqlalchemy as sa

from host.container import Container
from infrastructure.jobs.backend import EngineBackend
from infrastructure.jobs.engine.scheduler import Scheduler
from infrastructure.jobs.engine.worker import Worker
from infrastructure.jobs.sql.backend import SqlBackend


async def drain(scheduler: Scheduler, worker: Worker, *, max_rounds: int = 100) -> int:
    """Tick the scheduler and run the worker until a round does nothing; return how many
    jobs were enqueued or run in all."""
    total = 0
    for _ in range(max_rounds):
        done = await scheduler.tick() + await worker.run_once()
        if done == 0:
            return total
        total += done
    raise AssertionError(f"the engine was still busy after {max_rounds} rounds")


def engine_of(container: Container) -> EngineBackend:
    """The container's backend, which in tests is our engine (memory or SQL)."""
    backend = container.backend()
    assert isinstance(backend, EngineBackend)
    return backend


def database_of(container: Container) -> sa.Engine:
    """The SQLAlchemy engine of the container's SQL backend."""
    backend = container.backend()
    assert isinstance(backend, SqlBackend)
    return backend.database
