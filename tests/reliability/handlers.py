"""Witness handlers: every execution leaves rows in a `witness` table of the job database.

A run writes its start `(job_id, attempt, pid, server_id, started_at)` before doing anything
else and its `finished_at` once done, each write in a transaction of its own that commits at
once, apart from the store's transactions. After a run the test reads the table:

- lost job: a job with no finished witness;
- duplicate: a job with more than one started witness;
- justified duplicate: every earlier start of the job was made by a process the test killed.

Times are epoch seconds (`time.time()`); the test process and the workers share the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import typing
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from application.jobs import JobContext, RetryPolicy
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sql.database import create_engine

T = TypeVar("T")

metadata = sa.MetaData()

witness_table = sa.Table(
    "witness",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("job_id", sa.String(36), nullable=False, index=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("server_id", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Double(), nullable=False),
    sa.Column("finished_at", sa.Double()),
    sa.Column("violation", sa.Text()),
)

business_table = sa.Table(
    "business",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
)

RETRY = RetryPolicy(attempts=10, base_delay=0.0, max_delay=0.0)
"""Enough attempts that repeated rescues of one job never exhaust it in these tests."""


def create_witness_tables(engine: sa.Engine) -> None:
    metadata.create_all(engine)


@dataclass(frozen=True, slots=True, kw_only=True)
class Witness:
    """One row of the witness table."""

    id: str
    job_id: str
    attempt: int
    pid: int
    server_id: str
    started_at: float
    finished_at: float | None
    violation: str | None


def read_witnesses(engine: sa.Engine) -> list[Witness]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(witness_table).order_by(witness_table.c.started_at)
        ).mappings()
        return [Witness(**dict(row)) for row in rows]


class WitnessBook:
    """Writes witness rows from a worker process, on an engine and threads of its own (so a
    slow witness write never takes a thread or connection the store needs)."""

    def __init__(self, url: str, *, server_id: str, threads: int = 4) -> None:
        self.server_id = server_id
        self.pid = os.getpid()
        self._engine = create_engine(url)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="witness")

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self._engine.dispose()

    def factory(self, cls: type[T], /, **context: Any) -> T:
        """The executor's handler factory: gives witness handlers this book."""
        return typing.cast(T, typing.cast(Any, cls)(self, **context))

    async def started(self, job_id: uuid.UUID, attempt: int) -> str:
        row_id = str(uuid.uuid4())
        values = {
            "id": row_id,
            "job_id": str(job_id),
            "attempt": attempt,
            "pid": self.pid,
            "server_id": self.server_id,
            "started_at": time.time(),
        }
        await self._write(witness_table.insert().values(values))
        return row_id

    async def finished(self, row_id: str, violation: str | None = None) -> None:
        values = {"finished_at": time.time(), "violation": violation}
        await self._write(witness_table.update().where(witness_table.c.id == row_id).values(values))

    async def business_row_exists(self, key: str) -> bool:
        def read() -> bool:
            with self._engine.begin() as connection:
                query = sa.select(business_table.c.key).where(business_table.c.key == key)
                return connection.scalar(query) is not None

        return await asyncio.get_running_loop().run_in_executor(self._threads, read)

    async def _write(self, statement: sa.Executable) -> None:
        def write() -> None:
            with self._engine.begin() as connection:  # its own transaction, committed at once
                connection.execute(statement)

        await asyncio.get_running_loop().run_in_executor(self._threads, write)


class WitnessJobs:
    def __init__(self, book: WitnessBook, context: JobContext) -> None:
        self._book = book
        self._context = context

    async def sleep(self, millis: int) -> None:
        """Witness the run and sleep `millis` milliseconds in between."""
        row_id = await self._book.started(self._context.job_id, self._context.attempt)
        await asyncio.sleep(millis / 1000)
        await self._book.finished(row_id)

    async def check_business(self, key: str) -> None:
        """Witness the run; record a violation unless the business row `key` is committed
        (the job was enqueued in the same transaction as that row)."""
        row_id = await self._book.started(self._context.job_id, self._context.attempt)
        found = await self._book.business_row_exists(key)
        await self._book.finished(row_id, None if found else f"business row {key!r} missing")


def build_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register(WitnessJobs.sleep, retry=RETRY, timeout=dt.timedelta(minutes=5))
    registry.register(WitnessJobs.check_business, retry=RETRY)
    return registry
