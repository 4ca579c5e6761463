"""pyodbc for real, on MariaDB through MariaDB Connector/ODBC (`mysql+pyodbc`): what the ODBC
path needs beyond the contract suite, each worked around in `engine.py` or `tables.py`.

- a port in the URL's host part is ignored by the driver: `create_engine` moves it to the query;
- UPDATE row counts must count matched rows (the found-rows option flag);
- bound datetimes lose their microseconds: `UTCDateTime` binds ISO strings;
- bound `uuid.UUID`s are written byte-swapped: they are bound as text;
- deadlock victims carry SQLSTATE 40001 in the pyodbc error, which the store retries.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from application.jobs import JobId, JobState, LogLine
from infrastructure.jobs.engine.model import Job, Output
from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from infrastructure.jobs.sql.tables import build_metadata
from infrastructure.jobs.sql.transactions import is_deadlock
from infrastructure.persistence.sql import migrate as business_migrate
from tests.databases import empty_tables, server_database

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=dt.UTC)
TEXT = "é✓😀 ünïcode"


@pytest.fixture
def store(mariadb_odbc_engine: sa.Engine) -> Iterator[SQLAlchemyJobStore]:
    store = SQLAlchemyJobStore(mariadb_odbc_engine)
    empty_tables(mariadb_odbc_engine, store.metadata)
    yield store


def _job(**changes: object) -> Job:
    return Job(
        id=JobId(uuid.uuid4()),
        handler="h",
        args=[TEXT],
        kwargs={},
        queue="default",
        state=JobState.ENQUEUED,
        created_at=NOW,
        reason=TEXT,
        **changes,  # type: ignore[arg-type]
    )


def test_the_engine_is_mysql_through_pyodbc(mariadb_odbc_engine: sa.Engine) -> None:
    assert (mariadb_odbc_engine.dialect.name, mariadb_odbc_engine.dialect.driver) == (
        "mysql",
        "pyodbc",
    )
    assert mariadb_odbc_engine.url.query["OPTION"] == "2"


def test_a_port_in_the_host_part_is_used(mariadb_odbc_engine: sa.Engine) -> None:
    url = mariadb_odbc_engine.url
    port = int(str(url.query["port"]))
    as_written = url.set(query={"driver": str(url.query["driver"])})._replace(port=port)
    engine = create_engine(as_written)
    assert engine.url.port is None and engine.url.query["port"] == str(port)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT 1")) == 1
    engine.dispose()
    wrong = create_engine(as_written._replace(port=1))
    with pytest.raises(sa.exc.DBAPIError):
        wrong.connect().close()  # the driver did not fall back to its default port
    wrong.dispose()


async def test_times_keep_their_microseconds_and_ids_their_value(
    store: SQLAlchemyJobStore,
) -> None:
    job = _job(run_at=NOW + dt.timedelta(microseconds=1))
    await store.create([job], now=NOW)
    view = await store.get(job.id)
    assert view is not None
    assert view.id == job.id and view.created_at == NOW
    assert view.run_at == NOW + dt.timedelta(microseconds=1)
    assert view.history[0].at == NOW
    with store.database.connect() as connection:
        jobs = store.metadata.tables["jobs"]
        stored = connection.scalar(sa.select(sa.func.hex(sa.cast(jobs.c.id, sa.String(36)))))
        found = connection.scalar(sa.select(jobs.c.id).where(jobs.c.created_at == NOW))
    assert stored == str(job.id).encode().hex().upper()  # the text the database holds
    assert found == job.id  # a datetime comparison finds the row to the microsecond


async def test_text_round_trips_in_unicode(store: SQLAlchemyJobStore) -> None:
    job = _job()
    await store.create([job], now=NOW)
    [claim] = await store.acquire(
        ["default"], now=NOW, lease=dt.timedelta(seconds=30), limit=1, server_id=TEXT
    )
    line = LogLine(at=NOW, level="INFO", message=TEXT)
    assert not await store.extend(
        [(job.id, claim.token, Output(logs=(line,)))], now=NOW, lease=dt.timedelta(seconds=30)
    )
    view = await store.get(job.id)
    assert view is not None
    assert view.args == [TEXT] and view.logs == (line,) and view.history[0].reason == TEXT


def test_update_row_counts_count_matched_rows(store: SQLAlchemyJobStore) -> None:
    servers = store.metadata.tables["servers"]
    values = {"queues": "[]", "concurrency": 1, "started_at": NOW, "heartbeat_at": NOW}
    with store.database.begin() as connection:
        connection.execute(servers.insert().values(id="s", **values))
        unchanged = connection.execute(servers.update().where(servers.c.id == "s").values(values))
        assert unchanged.rowcount == 1


def test_a_deadlock_victim_is_recognised(mariadb_odbc_engine: sa.Engine) -> None:
    """Two transactions lock two rows in opposite orders: InnoDB rolls one back, and the
    store's retry test recognises the pyodbc error (SQLSTATE 40001)."""
    table = sa.Table(
        "deadlock_probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("v", sa.Integer, nullable=False),
    )
    table.create(mariadb_odbc_engine, checkfirst=True)
    try:
        with mariadb_odbc_engine.begin() as connection:
            connection.execute(table.delete())
            connection.execute(table.insert(), [{"id": 1, "v": 0}, {"id": 2, "v": 0}])
        errors = _cross_lock(mariadb_odbc_engine, table)
    finally:
        table.drop(mariadb_odbc_engine)
    assert len(errors) == 1, errors
    [error] = errors
    assert isinstance(error, sa.exc.DBAPIError)
    assert error.orig is not None and error.orig.args[0] == "40001"
    assert is_deadlock(error)


def _cross_lock(engine: sa.Engine, table: sa.Table) -> list[BaseException]:
    both_locked = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def run(first: int, second: int) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(table.update().where(table.c.id == first).values(v=1))
                both_locked.wait()
                connection.execute(table.update().where(table.c.id == second).values(v=2))
        except sa.exc.DBAPIError as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=order) for order in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_migrate_command_builds_the_store_tables_through_pyodbc() -> None:
    """`jobs-service migrate` on a `mysql+pyodbc` URL: the lock (GET_LOCK), the DDL and the
    version stamp all go through the ODBC driver."""
    with server_database("mariadb-odbc") as url:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "APP_DB__URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "host", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        engine = create_engine(url)
        try:
            assert migrate.is_at_head(engine)
            assert business_migrate.current_revision(engine) == business_migrate.head_revision()
            store_tables = build_metadata()
            with engine.connect() as connection:  # the business tables are checked elsewhere
                context = MigrationContext.configure(
                    connection,
                    opts={"include_name": _in(store_tables)},
                )
                assert compare_metadata(context, store_tables) == []
        finally:
            engine.dispose()


def _in(metadata: sa.MetaData) -> Callable[[str | None, str, object], bool]:
    """An Alembic `include_name` keeping only the tables of `metadata`."""
    return lambda name, kind, _parent: kind != "table" or name in metadata.tables
