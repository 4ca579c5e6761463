"""The engines the job store creates: what their errors show, and how SQLite transactions
begin."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.databases import migrated_engine

SECRET = "payload-secret-3f9c"
WAIT_SECONDS = 10.0
"""Far less than SQLite's busy timeout (30 s), which a read waiting for the lock would use."""


def test_a_failed_statement_never_quotes_its_parameters(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with pytest.raises(sa.exc.DBAPIError) as failed, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO no_such_table VALUES (:value)"), {"value": SECRET})
    finally:
        engine.dispose()

    assert "no_such_table" in str(failed.value)
    assert SECRET not in str(failed.value)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLAlchemyJobStore]:
    with migrated_engine("sqlite", tmp_path) as engine:
        yield SQLAlchemyJobStore(engine)


def begins(engine: sa.Engine) -> list[str]:
    """The BEGIN statements `engine` sends from now on."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            sent.append(statement)

    return sent


async def test_sqlite_reads_begin_deferred_and_writes_immediate(
    sqlite_store: SQLAlchemyJobStore,
) -> None:
    sent = begins(sqlite_store.database)

    await sqlite_store.count_by_state()
    await sqlite_store.list_recurring()
    reads = list(sent)
    sent.clear()
    await sqlite_store.remove_recurring("nothing-here")

    assert reads == ["BEGIN", "BEGIN"]
    assert sent == ["BEGIN IMMEDIATE"]


async def test_sqlite_reads_go_on_while_another_process_writes(
    sqlite_store: SQLAlchemyJobStore,
) -> None:
    # Given another connection (as another process would) holding the write lock
    writer = sqlite3.connect(sqlite_store.database.url.database or "", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        # Then reads are answered from the last committed state meanwhile
        async with asyncio.timeout(WAIT_SECONDS):
            counts = await sqlite_store.count_by_state()
            servers = await sqlite_store.list_servers()
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert sum(counts.values()) == 0 and servers == []
