"""The business database's sessions: the unit of work opens one per transaction and puts it
in a context variable, where the repositories find it; outside a transaction each repository
call runs in a short transaction of its own.

SQLAlchemy's `Session` is synchronous: its work runs in a worker thread, one step at a time,
so a session is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from application.jobs import JobService
from application.unit_of_work import Transaction

T = TypeVar("T")

_current: ContextVar[Session | None] = ContextVar("business_session", default=None)


class SqlDatabase:
    """The business database: runs repository work in the open transaction, if any."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in the current task's transaction, or in one of its own."""
        session = _current.get()
        if session is not None:
            return await asyncio.to_thread(work, session)
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
        token = _current.set(session)
        try:
            # Begin in a worker thread: the job port then works on this connection from the
            # event loop, and must not be the one to begin (on SQLite, BEGIN IMMEDIATE would
            # block the loop while another transaction holds the write lock).
            await asyncio.to_thread(session.connection)
            yield SqlTransaction(self._jobs.options(session=session))
            await asyncio.to_thread(session.commit)
        except BaseException:
            await asyncio.to_thread(session.rollback)
            raise
        finally:
            _current.reset(token)
            await asyncio.to_thread(session.close)
