"""Alembic environment of the business tables. `infrastructure.persistence.sql.migrate`
drives it and passes the connection (online), or the URL (offline `--sql`)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from infrastructure.persistence.sql.migrate import VERSION_TABLE
from infrastructure.persistence.sql.tables import metadata

config = context.config
offline = context.is_offline_mode()
connection: sa.Connection | None = None if offline else config.attributes["connection"]

context.configure(
    connection=connection,
    url=config.get_main_option("sqlalchemy.url") if offline else None,
    literal_binds=offline,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
