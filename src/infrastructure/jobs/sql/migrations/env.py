"""Alembic environment for the job store. `infrastructure.jobs.sql.migrate` drives it and
passes the connection (online), or the URL (offline `--sql`), schema and table prefix.

On SQL Server the schema is created when it does not exist (`jobs` by default)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from infrastructure.jobs.sql.tables import build_metadata

config = context.config
schema: str | None = config.attributes.get("schema")
prefix: str = config.attributes.get("prefix", "")
offline = context.is_offline_mode()
url: str | None = None
connection: sa.Connection | None = None
dialect_opts: dict[str, Any] | None = None
if offline:
    url = config.get_main_option("sqlalchemy.url")
    dialect_name = sa.make_url(url or "").get_backend_name()
    dialect_opts = {"paramstyle": "named"}
    if dialect_name == "mssql":
        # VARCHAR(max), not the deprecated TEXT: what SQLAlchemy picks once connected to
        # SQL Server 2012 or later, which it cannot ask offline.
        dialect_opts["deprecate_large_types"] = True
else:
    connection = config.attributes["connection"]
    dialect_name = connection.dialect.name

context.configure(
    connection=connection,
    url=url,
    literal_binds=offline,
    dialect_opts=dialect_opts,
    target_metadata=build_metadata(schema, prefix),
    version_table=f"{prefix}alembic_version",
    version_table_schema=schema,
    render_as_batch=True,
)
with context.begin_transaction():
    if dialect_name == "mssql" and schema:
        create = f"CREATE SCHEMA [{schema.replace(']', ']]')}]".replace("'", "''")
        name = schema.replace("'", "''")
        context.execute(f"IF SCHEMA_ID(N'{name}') IS NULL EXEC(N'{create}')")
    context.run_migrations()
