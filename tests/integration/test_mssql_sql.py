"""SQL Server, without a SQL Server: every statement the store sends, compiled for `mssql`, and
the migrations rendered as offline SQL for `mssql`.

The workload runs every store method on a SQLite store told it is on SQL Server (its
`_dialect` is "mssql", so it builds its SQL Server variants; SQLite ignores the mssql-only
hints). Each statement object executed is recorded, compiled with the `mssql+pyodbc` dialect
and checked: the claim has `UPDLOCK, READPAST, ROWLOCK` and `OUTPUT`, row limits are `TOP`,
and nothing SQL Server lacks (`LIMIT`, `RETURNING`, `FOR UPDATE`, `SKIP LOCKED`, ...) appears.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import event
from sqlalchemy.dialects.mssql import pyodbc as mssql_pyodbc
from sqlalchemy.sql import visitors

from application.jobs import (
    BatchId,
    Cron,
    JobError,
    JobId,
    JobState,
    LogLine,
    RetryPolicy,
)
from infrastructure.jobs.engine.model import (
    Finish,
    Job,
    NewBatch,
    Output,
    RecurringJob,
    ServerInfo,
    Tick,
)
from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.render_sql import render
from infrastructure.jobs.sql.store import SQLAlchemyJobStore

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
S = JobState
MSSQL = mssql_pyodbc.dialect()  # type: ignore[no-untyped-call]

FORBIDDEN = {
    "LIMIT": r"\bLIMIT\b",
    "OFFSET": r"\bOFFSET\b",
    "RETURNING": r"\bRETURNING\b",
    "FOR UPDATE": r"\bFOR\s+UPDATE\b",
    "SKIP LOCKED": r"\bSKIP\s+LOCKED\b",
    "NOWAIT": r"\bNOWAIT\b",
    "NOW()": r"\bNOW\s*\(",
    "CURRENT_TIMESTAMP": r"\bCURRENT_TIMESTAMP\b",
    "ON CONFLICT": r"\bON\s+CONFLICT\b",
    "ON DUPLICATE KEY": r"\bON\s+DUPLICATE\s+KEY\b",
    "TRUE/FALSE literal": r"\b(TRUE|FALSE)\b",
    "|| concatenation": r"\|\|",
    "ILIKE": r"\bILIKE\b",
    "pg_notify": r"\bPG_NOTIFY\b",
}
"""Constructs SQL Server lacks (or that would read the database's clock)."""
_SAVEPOINTS = (
    sa.sql.expression.SavepointClause,
    sa.sql.expression.RollbackToSavepointClause,
    sa.sql.expression.ReleaseSavepointClause,
)


@dataclass
class Recorded:
    phase: str
    statement: sa.sql.ClauseElement
    keys: list[str]
    """The parameter names it ran with (an INSERT names only the columns given)."""
    executemany: bool
    sql: str = ""

    def compile(self) -> None:
        """Compile for SQL Server as the connection would (same keys, same executemany)."""
        compiled = self.statement.compile(
            dialect=MSSQL, column_keys=self.keys, for_executemany=self.executemany
        )
        self.sql = str(compiled)


@dataclass
class Recorder:
    """The statement objects executed on an engine (`before_execute`), tagged with the
    workload phase. Savepoint statements are left out: SQLAlchemy's SQL Server dialect sends
    its own (`SAVE TRANSACTION`, `ROLLBACK TRANSACTION`, and no release)."""

    phase: str = "setup"
    statements: list[Recorded] = field(default_factory=list)

    def __call__(
        self,
        conn: sa.Connection,
        statement: Any,
        multiparams: list[dict[str, Any]],
        params: dict[str, Any],
        execution_options: Any,
    ) -> None:
        if not isinstance(statement, sa.sql.ClauseElement) or isinstance(statement, _SAVEPOINTS):
            return
        first = params or (multiparams[0] if multiparams else {})
        self.statements.append(
            Recorded(self.phase, statement, list(first), executemany=len(multiparams) > 1)
        )

    def of(self, phase: str) -> list[Recorded]:
        return [r for r in self.statements if r.phase == phase]


@dataclass
class Workload:
    recorder: Recorder
    phases: list[str]


def _job(
    state: JobState = S.ENQUEUED,
    *,
    queue: str = "default",
    at: dt.datetime = NOW,
    **changes: Any,
) -> Job:
    return Job(
        id=JobId(uuid.uuid4()),
        handler="tests.handlers:work",
        args=[1, "é✓"],
        kwargs={"when": at.isoformat()},
        queue=queue,
        state=state,
        created_at=at,
        reason="created",
        **changes,
    )


def _recurring(next_run_at: dt.datetime | None, *, cron: str = "*/5 * * * *") -> RecurringJob:
    return RecurringJob(
        id="report",
        cron=Cron(cron, "Europe/Paris"),
        handler="tests.handlers:report",
        args=[],
        kwargs={},
        queue="low",
        retry=RetryPolicy(attempts=3),
        timeout=dt.timedelta(seconds=30),
        next_run_at=next_run_at,
    )


async def _run_workload(store: SQLAlchemyJobStore, recorder: Recorder) -> list[str]:
    """Every store method, through its main paths; returns the phases in order."""
    phases: list[str] = []

    def phase(name: str) -> None:
        recorder.phase = name
        phases.append(name)

    t = NOW
    phase("create")
    plain, scheduled = _job(), _job(S.SCHEDULED, run_at=t - dt.timedelta(seconds=1))
    unique = _job(unique_key="welcome:42")
    await store.create([plain, scheduled, unique], now=t)
    phase("create_unique_taken")
    again = _job(unique_key="welcome:42")
    assert await store.create([again], now=t) == [unique.id]
    phase("create_continuation")
    child = _job(S.AWAITING, parent_id=plain.id)
    await store.create([child], now=t)
    phase("create_batch")
    batch_id = BatchId(uuid.uuid4())
    members = [_job(batch_id=batch_id, queue="low") for _ in range(2)]
    then = _job(S.AWAITING)
    await store.create(members, now=t, batch=NewBatch(id=batch_id, continuation=then))

    phase("acquire")
    t += dt.timedelta(seconds=1)
    claims = await store.acquire(
        ["critical", "default", "low"], now=t, lease=LEASE, limit=10, server_id="s1"
    )
    by_id = {claim.job.id: claim for claim in claims}
    assert {plain.id, unique.id, *(m.id for m in members)} <= set(by_id)

    phase("extend")
    line = LogLine(at=t, level="INFO", message="half way")
    lost = await store.extend(
        [(c.job.id, c.token, Output(progress=50.0, logs=(line,))) for c in claims],
        now=t,
        lease=LEASE,
    )
    assert not lost

    phase("finish")
    t += dt.timedelta(seconds=1)
    error = JobError(type="ValueError", message="boom", traceback="Traceback ...")
    results = [
        Finish(job_id=plain.id, token=by_id[plain.id].token, state=S.SUCCEEDED, reason="ok"),
        Finish(
            job_id=members[0].id,
            token=by_id[members[0].id].token,
            state=S.SUCCEEDED,
            reason="ok",
            result={"total": 3},
            batch_id=batch_id,
        ),
        Finish(
            job_id=members[1].id,
            token=by_id[members[1].id].token,
            state=S.FAILED,
            reason="failed",
            error=error,
            batch_id=batch_id,
        ),
        Finish(
            job_id=unique.id,
            token=by_id[unique.id].token,
            state=S.SCHEDULED,
            reason="retry in 5 s",
            run_at=t + dt.timedelta(seconds=5),
            error=error,
        ),
    ]
    assert await store.finish(results, now=t) == [True] * 4
    phase("finish_stale_token")
    stale = Finish(job_id=plain.id, token=uuid.uuid4(), state=S.SUCCEEDED, reason="late")
    assert await store.finish([stale], now=t) == [False]

    phase("release")
    claims = await store.acquire(["default"], now=t, lease=LEASE, limit=1, server_id="s1")
    assert claims
    await store.release([(c.job.id, c.token) for c in claims], now=t, reason="shutdown")

    phase("enqueue_due")
    t += dt.timedelta(seconds=10)
    assert await store.enqueue_due(now=t, limit=100) >= 1

    phase("rescue_expired")
    claims = await store.acquire(["default", "low"], now=t, lease=LEASE, limit=10, server_id="s2")
    assert claims
    t += LEASE + dt.timedelta(seconds=1)
    assert await store.rescue_expired(now=t, limit=100) == len(claims)

    phase("change_state")
    victim = _job()
    await store.create([victim], now=t)
    assert await store.change_state(victim.id, S.DELETED, now=t, reason="deleted") is S.ENQUEUED
    assert await store.change_state(victim.id, S.ENQUEUED, now=t, reason="requeued") is S.DELETED

    phase("get")
    view = await store.get(plain.id)
    assert view is not None and view.state is S.SUCCEEDED
    assert await store.get(JobId(uuid.uuid4())) is None
    phase("get_batch")
    batch = await store.get_batch(batch_id)
    assert batch is not None and batch.total == 2

    phase("upsert_recurring")
    first_run = t + dt.timedelta(minutes=5)
    await store.upsert_recurring(_recurring(first_run))
    await store.upsert_recurring(_recurring(first_run, cron="*/10 * * * *"))
    phase("get_recurring")
    assert await store.get_recurring("report") is not None
    phase("list_recurring")
    assert len(await store.list_recurring()) == 1
    phase("set_recurring_paused")
    assert await store.set_recurring_paused("report", True, next_run_at=None)
    assert await store.set_recurring_paused("report", False, next_run_at=first_run)
    phase("due_recurring")
    t = first_run
    due = await store.due_recurring(now=t, limit=10)
    assert [d.id for d in due] == ["report"]
    phase("record_ticks")
    tick = Tick(fire_at=first_run, job=_job(recurring_id="report", at=t))
    after = first_run + dt.timedelta(minutes=10)
    ok = await store.record_ticks(
        "report", expected_next_run=first_run, next_run_at=after, ticks=[tick], now=t
    )
    assert ok
    phase("record_ticks_moved_on")
    assert not await store.record_ticks(
        "report", expected_next_run=first_run, next_run_at=after, ticks=[], now=t
    )
    phase("record_ticks_duplicate")
    again_tick = Tick(fire_at=first_run, job=_job(recurring_id="report", at=t))
    assert not await store.record_ticks(
        "report", expected_next_run=after, next_run_at=after, ticks=[again_tick], now=t
    )
    phase("remove_recurring")
    assert await store.remove_recurring("report")

    phase("heartbeat")
    info = ServerInfo(id="s1", queues=("default",), concurrency=4, started_at=t, heartbeat_at=t)
    await store.heartbeat(info)
    await store.heartbeat(info)
    phase("list_servers")
    assert [s.id for s in await store.list_servers()] == ["s1"]
    phase("remove_dead_servers")
    assert await store.remove_dead_servers(heartbeat_before=t + dt.timedelta(seconds=1)) == ["s1"]
    phase("remove_server")
    await store.remove_server("s1")

    phase("purge_finished")
    assert await store.purge_finished(finished_before=t + dt.timedelta(days=8), limit=1000) >= 1
    phase("purge_failed")
    failed = frozenset({JobState.FAILED})
    later = t + dt.timedelta(days=31)
    await store.purge_finished(finished_before=later, limit=1000, states=failed)
    phase("purge_batches")
    await store.purge_batches(created_before=later, limit=1000)
    phase("purge_ticks")
    await store.purge_ticks(fired_before=later, limit=1000)
    return phases


@pytest.fixture
def mssql_store(tmp_path: Path) -> Iterator[tuple[SQLAlchemyJobStore, Recorder]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate.upgrade(engine)
    store = SQLAlchemyJobStore(engine, dialect_name="mssql")
    recorder = Recorder()
    event.listen(engine, "before_execute", recorder)
    yield store, recorder
    engine.dispose()


@pytest.fixture
async def workload(mssql_store: tuple[SQLAlchemyJobStore, Recorder]) -> Workload:
    store, recorder = mssql_store
    phases = await _run_workload(store, recorder)
    await store.close()
    for recorded in recorder.statements:
        recorded.compile()
    return Workload(recorder, phases)


def _limited(statement: sa.sql.ClauseElement) -> bool:
    """The statement, or a statement inside it, has a row limit."""
    return any(
        isinstance(element, sa.Select) and element._limit_clause is not None
        for element in visitors.iterate(statement)
    )


def test_every_store_method_sent_statements(workload: Workload) -> None:
    silent = [p for p in workload.phases if not workload.recorder.of(p)]
    assert silent == []
    assert len(workload.recorder.statements) > 50


def test_no_statement_uses_what_sql_server_lacks(workload: Workload) -> None:
    found = [
        (recorded.phase, name, recorded.sql)
        for recorded in workload.recorder.statements
        for name, pattern in FORBIDDEN.items()
        if re.search(pattern, recorded.sql, re.IGNORECASE)
    ]
    assert found == []


def test_row_limits_are_top(workload: Workload) -> None:
    limited = [r for r in workload.recorder.statements if _limited(r.statement)]
    assert {r.phase for r in limited} >= {
        "acquire",
        "enqueue_due",
        "rescue_expired",
        "due_recurring",
        "purge_finished",
        "purge_failed",
        "purge_batches",
        "purge_ticks",
    }
    assert [r.sql for r in limited if not re.search(r"\bSELECT TOP\b", r.sql)] == []


def test_claim_skips_locked_rows_and_outputs_the_claimed_rows(workload: Workload) -> None:
    claims = [r.sql for r in workload.recorder.of("acquire") if r.sql.startswith("UPDATE")]
    assert claims, [r.sql for r in workload.recorder.of("acquire")]
    for sql in claims:
        assert "WITH (UPDLOCK, READPAST, ROWLOCK)" in sql
        assert re.search(r"\bOUTPUT inserted\.id\b", sql)
        assert re.search(r"\bSELECT TOP\b", sql)
        assert "lease_token" in sql


@pytest.mark.parametrize("phase", ["enqueue_due", "rescue_expired"])
def test_watchdog_and_scheduler_scans_skip_locked_rows(workload: Workload, phase: str) -> None:
    scans = [r.sql for r in workload.recorder.of(phase) if _limited(r.statement)]
    assert scans
    assert all("WITH (UPDLOCK, READPAST, ROWLOCK)" in sql for sql in scans)


@pytest.mark.parametrize(
    ("phase", "table"),
    [
        ("change_state", "jobs"),
        ("create_continuation", "jobs"),
        ("upsert_recurring", "recurring_jobs"),
        ("finish", "batches"),
    ],
)
def test_read_then_write_locks_the_row(workload: Workload, phase: str, table: str) -> None:
    """Reads that decide a write hold an update lock on the row (SQL Server's FOR UPDATE)."""
    hinted = f"FROM {table} WITH (UPDLOCK, ROWLOCK)"
    assert any(hinted in r.sql for r in workload.recorder.of(phase)), [
        r.sql for r in workload.recorder.of(phase)
    ]


def test_identity_columns_are_left_to_the_database(workload: Workload) -> None:
    """History and log ids are IDENTITY columns: an INSERT naming them would need
    IDENTITY_INSERT on SQL Server."""
    inserts = [r.sql for r in workload.recorder.statements if r.sql.startswith("INSERT INTO job_")]
    assert inserts
    assert [sql for sql in inserts if re.match(r"INSERT INTO job_\w+ \(id,", sql)] == []


def test_times_are_parameters(workload: Workload) -> None:
    """The store passes its clock's time: no database clock function anywhere."""
    clocks = r"\b(GETDATE|GETUTCDATE|SYSDATETIME|SYSUTCDATETIME|SYSDATETIMEOFFSET)\b"
    assert [r.sql for r in workload.recorder.statements if re.search(clocks, r.sql, re.I)] == []


# --- offline migrations ----------------------------------------------------------------------
MSSQL_URL = (
    "mssql+pyodbc://user:secret@127.0.0.1:1433/jobsdb"
    "?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes"
)


def _offline_sql(url: str, schema: str | None) -> str:
    config = migrate.alembic_config(url=url, schema=schema)
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    return config.output_buffer.getvalue()


def test_migrations_render_offline_for_sql_server() -> None:
    sql = _offline_sql(MSSQL_URL, "jobs")
    assert "IF SCHEMA_ID(N'jobs') IS NULL EXEC(N'CREATE SCHEMA [jobs]')" in sql
    assert sql.index("CREATE SCHEMA") < sql.index("CREATE TABLE jobs.alembic_version")
    for table in ("jobs", "job_history", "job_logs", "batches", "recurring_jobs", "servers"):
        assert f"CREATE TABLE jobs.{table} (" in sql
    assert "CREATE TABLE jobs.recurring_ticks (" in sql
    assert re.search(
        r"CREATE UNIQUE INDEX \w+ ON jobs\.jobs \(active_key\) WHERE active_key IS NOT NULL", sql
    )
    assert "WHERE state = 'enqueued'" in sql  # filtered (partial) indexes
    assert "created_at DATETIME2(6) NOT NULL" in sql
    assert "DATETIME2" in sql and not re.search(r"\bDATETIME\b(?!2)", sql)
    assert "payload NVARCHAR(max) NOT NULL" in sql and not re.search(r"\bN?TEXT\b", sql)
    assert "id UNIQUEIDENTIFIER NOT NULL" in sql
    assert "BIGINT NOT NULL IDENTITY" in sql
    assert "paused BIT NOT NULL" in sql
    assert "INSERT INTO jobs.alembic_version" in sql and "'0001'" in sql
    assert "\nGO\n" in sql  # batches for sqlcmd / SSMS


def test_render_sql_command_prints_the_default_schema_script() -> None:
    """The documented command (docs/sql-server.md) works and uses the `jobs` default."""
    done = subprocess.run(
        [sys.executable, "-m", "infrastructure.jobs.sql.render_sql", "mssql"],
        cwd=ROOT,
        env={"PATH": "", "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == _offline_sql("mssql+pyodbc://", "jobs")


def test_render_sql_takes_a_url_schema_and_prefix() -> None:
    sql = render(MSSQL_URL, schema="dbo", prefix="app_")
    assert "CREATE TABLE dbo.app_jobs (" in sql
    assert "ON dbo.app_jobs (active_key) WHERE active_key IS NOT NULL" in sql
    assert "CREATE SCHEMA" not in render("postgresql")
