"""The SQL backend: the engine over `SQLAlchemyJobStore` on the service's database, shared by
every process and replica that points at it. Its schema comes from Alembic migrations."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from infrastructure.jobs.backend import BackendContext, BackendError, EngineBackend
from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine, default_schema
from infrastructure.jobs.sql.store import SQLAlchemyJobStore

logger = logging.getLogger(__name__)


class SqlBackend(EngineBackend):
    shared = True

    def __init__(self, context: BackendContext) -> None:
        config = context.database
        try:
            database = create_engine(config.url)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:  # URL, driver, folder
            raise BackendError(f"cannot use the database of APP_DB__URL: {exc}") from exc
        self.database = database
        self._schema = config.schema or default_schema(config.url)
        self._prefix = config.table_prefix
        super().__init__(self.store_on(database), context)

    def store_on(self, database: sa.Engine) -> SQLAlchemyJobStore:
        """The store over the service's database (an adapter on SQL state may extend it)."""
        return SQLAlchemyJobStore(database, schema=self._schema, prefix=self._prefix)

    async def prepare(self, stopping: asyncio.Event) -> bool:
        """Migrate, or wait for another process to (`migrate_on_start` off)."""
        if self.context.database.migrate_on_start:
            await self.migrate()
            return False
        return await migrate.wait_for_schema(self.problem, stopping, "the schema")

    async def migrate(self) -> str:
        try:
            await asyncio.to_thread(
                migrate.upgrade,
                self.database,
                schema=self._schema,
                prefix=self._prefix,
                timeout=self.context.database.migration_lock_timeout,
            )
        except migrate.MigrationLockTimeout as exc:
            raise BackendError(str(exc)) from exc
        return f"schema at revision {migrate.head_revision()}"

    async def problem(self) -> str | None:
        """Why the database cannot be used now (unreachable, not migrated), or None."""
        try:
            at_head = await asyncio.to_thread(
                migrate.is_at_head, self.database, schema=self._schema, prefix=self._prefix
            )
        except Exception as exc:  # the reason is the answer, whatever it is
            reason = (str(exc).splitlines() or [""])[0]
            return f"cannot read the database's schema: {type(exc).__name__}: {reason}"
        if not at_head:
            return "the database schema is not at the latest revision; run `jobs-service migrate`"
        return None

    async def close(self) -> None:
        await super().close()
        self.database.dispose()
