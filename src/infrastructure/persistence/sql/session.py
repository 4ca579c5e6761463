"""The business database's sessions: the unit of work opens one per transaction and puts it
in a context variable, where the repositories find it; outside a transaction each repository
call runs in a short transaction of its own.

SQLAlchemy's `Session` is synchronous: its work runs in a worker thread, one step at a time,
so a session is never used by two threads at once. A unit of work's transaction has a thread
of its own, not one of asyncio's shared pool: it holds the database's write lock across its
steps (on SQLite, the whole file), and each step would otherwise wait for a free pool thread
while every pool thread could be another transaction waiting for that lock (the job store's
among them), until SQLite's busy timeout failed them with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from application.jobs import JobService
from application.unit_of_work import Transaction

T = TypeVar("T")


@dataclass(frozen=True)
class _OpenTransaction:
    session: Session
    thread: ThreadPoolExecutor
    """One worker thread, this transaction's only: its steps never queue behind other work."""

    async def step(self, work: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread, functools.partial(work, *args))


_current: ContextVar[_OpenTransaction | None] = ContextVar("business_session", default=None)


class SqlDatabase:
    """The business database: runs repository work in the open transaction, if any."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in the current task's transaction, or in one of its own."""
        transaction = _current.get()
        if transaction is not None:
            return await transaction.step(work, transaction.session)
        return await asyncio.to_thread(self._in_own_transaction, work)

    def _in_own_transaction(self, work: Callable[[Session], T]) -> T:
        with Session(self.engine) as session, session.begin():
            return work(session)


class SqlTransaction:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    @property
    def jobs(self) -> JobService:
        return self._jobs


class SqlUnitOfWork:
    """Business transactions on the SQL database; jobs created through `tx.jobs` are written
    in the same transaction (the SQL job backend honours `options(session=...)`)."""

    def __init__(self, database: SqlDatabase, jobs: JobService) -> None:
        self._database = database
        self._jobs = jobs

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Transaction]:
        if _current.get() is not None:
            raise RuntimeError("a business transaction is already open in this task")
        session = Session(self._database.engine)
        transaction = _OpenTransaction(
            session, ThreadPoolExecutor(max_workers=1, thread_name_prefix="business-tx")
        )
        token = _current.set(transaction)
        try:
            # Begin in the transaction's thread: the job port then works on this connection
            # from the event loop, and must not be the one to begin (on SQLite, BEGIN
            # IMMEDIATE would block the loop while another transaction holds the write lock).
            await transaction.step(session.connection)
            yield SqlTransaction(self._jobs.options(session=session))
            await transaction.step(session.commit)
        except BaseException:
            await transaction.step(session.rollback)
            raise
        finally:
            _current.reset(token)
            try:
                await transaction.step(session.close)
            finally:
                transaction.thread.shutdown(wait=False)
