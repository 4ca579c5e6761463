"""Alembic environment for the job store. `infrastructure.jobs.sql.migrate` drives it and
passes the connection (online), or the URL (offline `--sql`), schema and table prefix."""

from __future__ import annotations

from alembic import context

from infrastructure.jobs.sql.tables import build_metadata

config = context.config
schema: str | None = config.attributes.get("schema")
prefix: str = config.attributes.get("prefix", "")
offline = context.is_offline_mode()

context.configure(
    connection=None if offline else config.attributes["connection"],
    url=config.get_main_option("sqlalchemy.url") if offline else None,
    literal_binds=offline,
    dialect_opts={"paramstyle": "named"} if offline else None,
    target_metadata=build_metadata(schema, prefix),
    version_table=f"{prefix}alembic_version",
    version_table_schema=schema,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
