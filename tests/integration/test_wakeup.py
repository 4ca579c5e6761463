"""PostgreSQL wakes idle workers of other processes with LISTEN/NOTIFY instead of polling."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.execution import Executor
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.integration.handlers import Notes

POLL_NEVER = 3600.0
"""A poll interval no test outlives: only a notification can wake the worker."""


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
@pytest.mark.timeout(30)
async def test_idle_worker_wakes_on_a_job_enqueued_through_another_engine(
    engine: sa.Engine,
) -> None:
    registry = HandlerRegistry()
    registry.register(Notes.write)
    worker_store = SQLAlchemyJobStore(engine)
    worker = Worker(
        worker_store,
        Executor(registry),
        SystemClock(),
        server_id="listener",
        settings=WorkerSettings(poll_interval=POLL_NEVER, heartbeat_interval=POLL_NEVER),
    )
    Notes.written.clear()
    stopping = asyncio.Event()
    running = asyncio.create_task(worker.run(stopping))
    await asyncio.sleep(0.5)  # the worker has claimed nothing and waits on its listener

    other_engine = create_engine(engine.url)  # another "process": its own connections
    other = EngineJobService(SQLAlchemyJobStore(other_engine), registry, SystemClock())
    await other.enqueue(Notes.write, "woken")
    async with asyncio.timeout(20):  # without the notification, only the poll would wake it
        while True:
            if "woken" in Notes.written:
                break
            await asyncio.sleep(0.05)

    stopping.set()
    await running
    await worker_store.close()
    other_engine.dispose()
    assert Notes.written == ["woken"]
