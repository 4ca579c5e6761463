"""Migrations of the business tables: an Alembic chain of their own, with its own version
table (`business_alembic_version`), beside the job store's.

A chain of their own because the business tables outlive the choice of job backend (with the
dramatiq backend there is no job schema to chain onto), take neither the job tables' prefix
nor their schema, and change at the pace of the features, not of the engine. Both chains run
under the same migration lock, so several replicas starting at once migrate once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from infrastructure.jobs.sql.migrate import migration_lock

logger = logging.getLogger(__name__)

VERSION_TABLE = "business_alembic_version"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: sa.Engine, *, timeout: float = 60.0) -> None:
    """Upgrade the business tables to head under the migration lock.

    Raises:
        MigrationLockTimeout: the lock was not free within `timeout` seconds.
    """
    config = alembic_config()
    with migration_lock(engine, timeout):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    logger.info("business tables at head %s", head_revision(), extra={"action": "schema_migrated"})


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def is_at_head(engine: sa.Engine) -> bool:
    return current_revision(engine) == head_revision()
