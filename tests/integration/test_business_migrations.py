"""The business tables' Alembic chain: a chain of its own beside the job store's, creating
exactly the tables the repositories declare."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from infrastructure.jobs.sql import migrate as jobs_migrate
from infrastructure.persistence.sql import migrate
from infrastructure.persistence.sql.tables import metadata


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_migrated_tables_match_the_declared_ones(kind: str, request: pytest.FixtureRequest) -> None:
    engine: sa.Engine = request.getfixturevalue(f"{kind}_engine")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = [
            difference
            for difference in compare_metadata(context, metadata)
            if _table_of(difference) in metadata.tables
        ]
    assert differences == []


def test_business_chain_has_its_own_version_and_both_chains_are_at_head(
    sqlite_engine: sa.Engine,
) -> None:
    assert migrate.current_revision(sqlite_engine) == migrate.head_revision() is not None
    assert jobs_migrate.is_at_head(sqlite_engine)
    assert migrate.VERSION_TABLE in sa.inspect(sqlite_engine).get_table_names()


def _table_of(difference: object) -> str | None:
    """The table a difference is about (the job store's tables belong to other metadata)."""
    change = difference[0] if isinstance(difference, list) else difference
    assert isinstance(change, tuple)
    for part in change[1:]:
        table = getattr(part, "table", None)
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(table, sa.Table):
            return table.name
        if isinstance(part, str) and part in metadata.tables:
            return part
    return None
