"""The business database as the host runs it: opened from the service's database URL,
migrated at start-up (or waited for), checked for readiness, closed at the end."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.migrate import MigrationLockTimeout, wait_for_schema
from infrastructure.persistence.sql import migrate
from infrastructure.persistence.sql.session import SqlDatabase

logger = logging.getLogger(__name__)


class PersistenceError(Exception):
    """The business database cannot be used; the message says why, for an operator."""


class SqlPersistence:
    """Business rows in the SQL database at `url` (the job store's by default)."""

    def __init__(self, url: str, *, migrate_on_start: bool, lock_timeout: float) -> None:
        if _in_memory_sqlite(url):
            raise PersistenceError(
                "an in-memory SQLite database lives in one connection and cannot hold the "
                "business tables; give APP_DB__URL a file, or set APP_DB__PERSISTENCE=memory"
            )
        try:
            engine = create_engine(url)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:
            raise PersistenceError(f"cannot use the database of APP_DB__URL: {exc}") from exc
        self.database = SqlDatabase(engine)
        self._migrate_on_start = migrate_on_start
        self._lock_timeout = lock_timeout

    async def prepare(self, stopping: asyncio.Event) -> bool:
        """Migrate the business tables, or wait for another process to. True when
        `stopping` was set meanwhile."""
        if self._migrate_on_start:
            await self.migrate()
            return False
        return await wait_for_schema(self.problem, stopping, "the business tables")

    async def migrate(self) -> str:
        """Raises PersistenceError when another migration held the lock too long."""
        engine, timeout = self.database.engine, self._lock_timeout
        try:
            await asyncio.to_thread(migrate.upgrade, engine, timeout=timeout)
        except MigrationLockTimeout as exc:
            raise PersistenceError(str(exc)) from exc
        return f"business tables at revision {migrate.head_revision()}"

    async def problem(self) -> str | None:
        try:
            at_head = await asyncio.to_thread(migrate.is_at_head, self.database.engine)
        except Exception as exc:  # the reason is the answer, whatever it is
            reason = (str(exc).splitlines() or [""])[0]
            return f"cannot read the business tables' version: {type(exc).__name__}: {reason}"
        if not at_head:
            return "the business tables are not at the latest revision; run `jobs-service migrate`"
        return None

    async def close(self) -> None:
        self.database.engine.dispose()


class MemoryPersistence:
    """Business rows in process memory (tests): nothing to prepare, lost on exit."""

    database = None

    async def prepare(self, stopping: asyncio.Event) -> bool:
        return False

    async def migrate(self) -> str:
        return "business rows in memory: nothing to migrate"

    async def problem(self) -> str | None:
        return None

    async def close(self) -> None:
        return None


def _in_memory_sqlite(url: str) -> bool:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return False  # not a URL: creating the engine reports it
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
