"""Schema migrations (Alembic), safe when several processes migrate at once.

The first process takes a lock (PostgreSQL advisory lock, MariaDB `GET_LOCK`, SQL Server
`sp_getapplock`, SQLite's write lock) on a dedicated connection and upgrades; the others wait,
bounded by a timeout, then find the schema at head and do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

LOCK_NAME = "jobs_service_migrate"
_PG_LOCK_KEY = 0x6A6F6273  # "jobs"


class MigrationLockTimeout(TimeoutError):
    """Another process held the migration lock for longer than the timeout."""


SCHEMA_POLL_SECONDS = 2.0


async def wait_for_schema(
    problem: Callable[[], Awaitable[str | None]], stopping: asyncio.Event, what: str
) -> bool:
    """Wait until `problem` says nothing (another process migrated `what`), looking every
    `SCHEMA_POLL_SECONDS`. True when `stopping` was set meanwhile."""
    while await problem() is not None:
        logger.warning("waiting for %s to be migrated to head", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), SCHEMA_POLL_SECONDS)
        if stopping.is_set():
            return True
    return False


def alembic_config(
    *, schema: str | None = None, prefix: str = "", url: str | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    config.attributes.update(schema=schema, prefix=prefix)
    return config


def upgrade(
    engine: sa.Engine, *, schema: str | None = None, prefix: str = "", timeout: float = 60.0
) -> None:
    """Upgrade the schema to head under the migration lock.

    Raises:
        MigrationLockTimeout: the lock was not free within `timeout` seconds.
    """
    config = alembic_config(schema=schema, prefix=prefix)
    with migration_lock(engine, timeout):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    logger.info("schema at head %s", head_revision(), extra={"action": "schema_migrated"})


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(
    engine: sa.Engine, *, schema: str | None = None, prefix: str = ""
) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": f"{prefix}alembic_version", "version_table_schema": schema},
        )
        return context.get_current_revision()


def is_at_head(engine: sa.Engine, *, schema: str | None = None, prefix: str = "") -> bool:
    return current_revision(engine, schema=schema, prefix=prefix) == head_revision()


@contextlib.contextmanager
def migration_lock(engine: sa.Engine, timeout: float) -> Iterator[None]:
    """Hold the service's migration lock (shared by every Alembic chain of the database).

    Raises:
        MigrationLockTimeout: the lock was not free within `timeout` seconds.
    """
    dialect = engine.dialect.name
    if dialect == "sqlite":
        yield  # BEGIN IMMEDIATE (see engine.py) serialises the migrating transactions
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        _acquire(connection, dialect, timeout)
        try:
            yield
        finally:
            _release(connection, dialect)


def _acquire(connection: sa.Connection, dialect: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _try_lock(connection, dialect):
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(
                f"another process held the migration lock {LOCK_NAME!r} for over {timeout:g} s"
            )
        time.sleep(0.2)


def _try_lock(connection: sa.Connection, dialect: str) -> bool:
    if dialect == "postgresql":
        query = "SELECT pg_try_advisory_lock(:key)"
        return bool(connection.scalar(sa.text(query), {"key": _PG_LOCK_KEY}))
    if dialect in ("mysql", "mariadb"):
        locked = connection.scalar(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": LOCK_NAME})
        return bool(locked == 1)
    if dialect == "mssql":
        result = connection.scalar(
            sa.text(
                "DECLARE @r int; EXEC @r = sp_getapplock @Resource = :name, "
                "@LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @r"
            ),
            {"name": LOCK_NAME},
        )
        return result is not None and int(result) >= 0
    raise NotImplementedError(f"no migration lock for dialect {dialect}")


def _release(connection: sa.Connection, dialect: str) -> None:
    if dialect == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    elif dialect == "mssql":
        connection.execute(
            sa.text("EXEC sp_releaseapplock @Resource = :name, @LockOwner = 'Session'"),
            {"name": LOCK_NAME},
        )
