"""Running the store's work: in a worker thread (one code path for every sync driver), in a
transaction of its own retried when the database picks it as a deadlock victim, or inside
the caller's transaction (`options(session=...)`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from infrastructure.jobs.sql.database import READ_ONLY_OPTION
from infrastructure.jobs.sql.wakeup import Wakeup

T = TypeVar("T")
logger = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 5
"""Runs of a transaction the database rolled back as a deadlock victim (InnoDB does so to
callers waiting on a unique key whose holder rolled back)."""
CLOSE_WAIT_SECONDS = 30.0
"""How long `close` waits for database work still running in threads."""
_DEADLOCK_CODES = frozenset({1213, "40P01", "40001"})  # MariaDB; PostgreSQL deadlock, serialization
ENQUEUED_FLAG = "jobs_enqueued"
"""Set in a connection's `info` by a transaction that made jobs enqueued."""
FIRST_RECONNECT_DELAY = 1.0
MAX_RECONNECT_DELAY = 2.0
"""After a failed connection the store waits this long (doubling from the first delay up
to the maximum) before it lets one caller try again; the others fail fast meanwhile."""


class DatabaseUnavailable(ConnectionError):
    """The database could not be reached a moment ago; no new attempt is made yet."""


class ReconnectBackoff:
    """Keeps a process's callers (claims, heartbeats, watchdog, API) from hammering a database
    that is down: after a connection failure, calls fail fast with DatabaseUnavailable until a
    delay passes (doubling per failure, capped); then one call tries, and the next may try
    only a delay later, even if that one hangs; a success opens the way for all."""

    def __init__(
        self, first: float = FIRST_RECONNECT_DELAY, maximum: float = MAX_RECONNECT_DELAY
    ) -> None:
        self._first = first
        self._maximum = maximum
        self._failures = 0
        self._retry_at = 0.0

    def enter(self) -> None:
        """Before a call: raises DatabaseUnavailable until the next attempt is due."""
        if not self._failures:
            return
        now = time.monotonic()
        if now < self._retry_at:
            raise DatabaseUnavailable(
                f"database unreachable; next connection attempt in {self._retry_at - now:.1f} s"
            )
        self._retry_at = now + self._delay()  # this call is the attempt of its slot

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self, *, unreachable: bool) -> None:
        """After a failed call; `unreachable`: it failed for want of a connection."""
        if not unreachable:
            return
        delay = self._delay()
        self._failures += 1
        self._retry_at = max(self._retry_at, time.monotonic() + delay)
        logger.warning(
            "database unreachable; next connection attempt in %.1f s",
            delay,
            extra={"action": "database_unreachable"},
        )

    def _delay(self) -> float:
        return float(min(self._maximum, self._first * 2.0 ** max(0, self._failures - 1)))


class TransactionRunner:
    def __init__(self, database: sa.Engine, wakeup: Wakeup) -> None:
        self._database = database
        self._wakeup = wakeup
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._backoff = ReconnectBackoff()
        if not sa.event.contains(database, "handle_error", _failed_connect_is_disconnect):
            sa.event.listen(database, "handle_error", _failed_connect_is_disconnect)

    async def run(
        self,
        work: Callable[[sa.Connection], T],
        *,
        session: object | None = None,
        read_only: bool = False,
    ) -> T:
        """Run `work` in a transaction: the caller's `session` if given (which wakes workers
        when it commits), else one of its own in a worker thread, after which this process's
        idle workers wake if it enqueued jobs. `read_only`: `work` writes nothing."""
        if session is not None:
            return await _run_in_session(session, work)
        enqueued = False

        def in_transaction() -> T:
            nonlocal enqueued
            with self._database.connect() as conn:
                if read_only:
                    conn.execution_options(**{READ_ONLY_OPTION: True})
                with conn.begin():
                    try:
                        result = work(conn)
                    finally:  # the flag lives on the pooled connection: never leave it behind
                        enqueued = conn.info.pop(ENQUEUED_FLAG, False)
                    return result

        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                result = await self.in_thread(in_transaction)
                break
            except DBAPIError as exc:
                if attempt == DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                    raise
                logger.info("transaction chosen as deadlock victim; retrying (%d)", attempt)
        if enqueued:
            self._wakeup.notify_local()
        return result

    async def in_thread(self, work: Callable[[], T]) -> T:
        """Run blocking database work in a worker thread, unless the database was unreachable
        a moment ago (DatabaseUnavailable: see ReconnectBackoff). A cancelled caller does not
        stop the thread, which holds a connection until it ends, so `close` waits for it."""
        self._backoff.enter()
        future = asyncio.ensure_future(asyncio.to_thread(work))
        self._in_flight.add(future)
        future.add_done_callback(self._forget)
        future.add_done_callback(self._note_reachability)
        return await asyncio.shield(future)

    def _note_reachability(self, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None:
            self._backoff.succeeded()
        else:
            lost = isinstance(error, DBAPIError) and error.connection_invalidated
            self._backoff.failed(unreachable=lost)

    async def close(self) -> None:
        """Wait for work still running in threads, so the caller may dispose of the engine."""
        loop = asyncio.get_running_loop()  # the synchronous port's calls run on a loop of theirs
        mine = [future for future in list(self._in_flight) if future.get_loop() is loop]
        if mine:
            await asyncio.wait(mine, timeout=CLOSE_WAIT_SECONDS)

    def _forget(self, future: asyncio.Future[Any]) -> None:
        self._in_flight.discard(future)
        if not future.cancelled():
            future.exception()  # retrieved: its caller may have been cancelled meanwhile


def _failed_connect_is_disconnect(context: sa.engine.ExceptionContext) -> None:
    """A connection that could not be opened counts as lost (`connection_invalidated`), as
    one cut mid-statement does: both mean the database is unreachable."""
    if context.connection is None:
        context.is_disconnect = True


def is_deadlock(error: BaseException | None) -> bool:
    """A deadlock victim, also when it surfaced as a later error (on MariaDB the rollback of a
    savepoint the deadlock already discarded fails with 1305)."""
    for _ in range(10):  # the chain is short; never follow a cycle forever
        if error is None:
            return False
        original = error.orig if isinstance(error, DBAPIError) else error
        args = getattr(original, "args", ())
        if getattr(original, "sqlstate", None) in _DEADLOCK_CODES or (
            args and args[0] in _DEADLOCK_CODES
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


async def _run_in_session(session: object, work: Callable[[sa.Connection], T]) -> T:
    """Run `work` on the caller's connection, inside the caller's transaction."""
    from sqlalchemy.orm import Session

    if isinstance(session, Session):
        connection = session.connection()
    elif isinstance(session, sa.Connection):
        connection = session
    else:
        run_sync = await _async_runner(session)
        if run_sync is None:
            raise TypeError(
                "session must be a SQLAlchemy Session, Connection, AsyncSession or "
                f"AsyncConnection, not {type(session).__name__}"
            )
        return await run_sync(lambda conn: _without_flag(conn, work))
    return _without_flag(connection, work)


def _without_flag(conn: sa.Connection, work: Callable[[sa.Connection], T]) -> T:
    """The caller commits: PostgreSQL notifies at its commit, and nothing is woken here."""
    try:
        return work(conn)
    finally:
        conn.info.pop(ENQUEUED_FLAG, None)


async def _async_runner(
    session: object,
) -> Callable[[Callable[[sa.Connection], T]], Awaitable[T]] | None:
    try:
        from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
    except ImportError:  # no greenlet: no async sessions either
        return None
    if isinstance(session, AsyncSession):
        return (await session.connection()).run_sync
    if isinstance(session, AsyncConnection):
        return session.run_sync
    return None
