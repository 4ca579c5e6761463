"""SQL Server, without a SQL Server: the operators' reads (lists, counts, outcomes per minute)
and the trace context column, compiled for `mssql` as `test_mssql_sql` does for the rest of
the store. The statements also run, on SQLite, so they are the ones the store really sends."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql, postgresql, sqlite

from application.jobs import JobFilter, JobId, JobSort, JobState
from infrastructure.jobs.engine.model import Job
from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.listing import like_pattern, matching
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.integration.test_mssql_sql import FORBIDDEN, MSSQL, Recorded, Recorder

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
EVERY_FILTER = JobFilter(
    states=frozenset({JobState.ENQUEUED, JobState.FAILED}),
    queue="default",
    handler="tests.handlers:work",
    text="50%_[x]\\'",
    created_from=NOW - dt.timedelta(hours=1),
    created_to=NOW + dt.timedelta(hours=1),
    recurring_id="report",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[SQLAlchemyJobStore, Recorder]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate.upgrade(engine)
    store = SQLAlchemyJobStore(engine, dialect_name="mssql")
    recorder = Recorder()
    event.listen(engine, "before_execute", recorder)
    yield store, recorder
    engine.dispose()


async def run_reads(store: SQLAlchemyJobStore, recorder: Recorder) -> list[Recorded]:
    """Every read method, with every filter and a keyset position; the statements, compiled."""
    job = Job(
        id=JobId(uuid.uuid4()),
        handler="tests.handlers:work",
        args=[1],
        kwargs={},
        queue="default",
        state=JobState.ENQUEUED,
        created_at=NOW,
        trace_context={"traceparent": "00-abc-def-01"},
    )
    recorder.phase = "create"
    await store.create([job], now=NOW)
    recorder.phase = "acquire"
    [claim] = await store.acquire(["default"], now=NOW, lease=LEASE, limit=1, server_id="s1")
    assert claim.job.trace_context == job.trace_context
    for sort in JobSort:
        recorder.phase = "list_jobs"
        await store.list_jobs(EVERY_FILTER, sort=sort, limit=10, after=(NOW, job.id))
    recorder.phase = "count_jobs"
    await store.count_jobs(EVERY_FILTER)
    recorder.phase = "count_by_state"
    await store.count_by_state()
    recorder.phase = "finished_per_minute"
    await store.finished_per_minute(since=NOW, until=NOW + dt.timedelta(hours=1))
    await store.close()
    for recorded in recorder.statements:
        recorded.compile()
    return recorder.statements


@pytest.fixture
async def statements(store: tuple[SQLAlchemyJobStore, Recorder]) -> list[Recorded]:
    return await run_reads(*store)


def of(statements: list[Recorded], phase: str) -> list[str]:
    return [r.sql for r in statements if r.phase == phase]


def test_reads_use_nothing_sql_server_lacks(statements: list[Recorded]) -> None:
    found = [
        (recorded.phase, name, recorded.sql)
        for recorded in statements
        for name, pattern in FORBIDDEN.items()
        if re.search(pattern, recorded.sql, re.IGNORECASE)
    ]
    assert found == []


def test_job_list_is_a_top_query_with_a_spelled_out_keyset(statements: list[Recorded]) -> None:
    lists = of(statements, "list_jobs")
    assert len(lists) == len(JobSort)
    for sql in lists:
        assert re.search(r"\bSELECT TOP\b", sql)
        assert re.search(r"ORDER BY jobs\.(created_at|state_at)( DESC)?, jobs\.id( DESC)?$", sql)
        assert re.search(r"jobs\.(created_at|state_at) [<>] :\w+ OR", sql)  # no row values


def test_text_filter_is_a_case_sensitive_like_with_an_escape(statements: list[Recorded]) -> None:
    for sql in of(statements, "list_jobs") + of(statements, "count_jobs"):
        assert re.search(r"jobs\.payload COLLATE Latin1_General_BIN2 LIKE :\w+ ESCAPE '\\'", sql)


def test_outcomes_are_grouped_by_minutes_counted_in_sql_server(
    statements: list[Recorded],
) -> None:
    [sql] = of(statements, "finished_per_minute")
    assert re.search(r"DATEDIFF\(minute, :\w+, job_history\.at\)", sql)
    assert re.search(r"GROUP BY anon_1\.minute, anon_1\.state", sql)


def test_trace_context_is_written_and_claimed(statements: list[Recorded]) -> None:
    [insert] = [sql for sql in of(statements, "create") if sql.startswith("INSERT INTO jobs ")]
    assert "trace_context" in insert
    claims = [sql for sql in of(statements, "acquire") if sql.startswith("UPDATE")]
    assert claims and all("inserted.trace_context" in sql for sql in claims)


def test_like_pattern_escapes_every_wildcard_and_the_escape_character() -> None:
    assert like_pattern("50%_[x]\\'") == "%50\\%\\_\\[x]\\\\'%"
    assert like_pattern("plain") == "%plain%"


def test_text_filter_compiles_per_dialect(store: tuple[SQLAlchemyJobStore, Recorder]) -> None:
    """The same filter on each database: a LIKE that is case-sensitive there (SQLite: instr)."""
    query = sa.select(sa.func.count()).where(
        *matching(store[0].metadata.tables["jobs"], JobFilter(text="A%"))
    )
    compiled = {
        name: str(query.compile(dialect=dialect))
        for name, dialect in [
            ("postgresql", postgresql.psycopg.dialect()),  # type: ignore[no-untyped-call]
            ("mysql", mysql.pymysql.dialect()),
            ("sqlite", sqlite.pysqlite.dialect()),
            ("mssql", MSSQL),
        ]
    }
    assert "jobs.payload LIKE %(has_text_1)s::VARCHAR ESCAPE '\\'" in compiled["postgresql"]
    assert "CAST(jobs.payload AS BINARY) LIKE %s ESCAPE '\\\\'" in compiled["mysql"]
    assert "instr(jobs.payload, ?) > 0" in compiled["sqlite"]
    assert not any("= 1" in sql for sql in compiled.values())
