"""SQL store specifics the contract suite cannot see: locking SQL, transactions, uniqueness
under contention."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.orm import Session

from application.jobs import JobId, JobState, UniqueKeyHeld
from infrastructure.jobs.clock import FakeClock
from infrastructure.jobs.engine.client import EngineJobService
from infrastructure.jobs.engine.model import Job, Move
from infrastructure.jobs.handlers import HandlerRegistry
from infrastructure.jobs.sql import rows
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.integration.handlers import Notes

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def service(engine: sa.Engine) -> tuple[EngineJobService, SQLAlchemyJobStore]:
    registry = HandlerRegistry()
    registry.register(Notes.write)
    store = SQLAlchemyJobStore(engine)
    return EngineJobService(store, registry, FakeClock(NOW)), store


def count_jobs(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT COUNT(*) FROM jobs")) or 0


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (postgresql.dialect(), "FOR UPDATE SKIP LOCKED"),  # type: ignore[no-untyped-call]
        (mysql.dialect(), "FOR UPDATE SKIP LOCKED"),
        (mssql.dialect(), "WITH (UPDLOCK, READPAST, ROWLOCK)"),  # type: ignore[no-untyped-call]
    ],
)
def test_claim_query_skips_locked_rows(dialect: sa.Dialect, expected: str) -> None:
    store = SQLAlchemyJobStore(sa.create_engine("sqlite://"), dialect_name=dialect.name)
    jobs = store.tables.jobs
    query = store.dialect.skip_locked(sa.select(jobs.c.id).where(jobs.c.state == "enqueued"), jobs)
    assert expected in str(query.compile(dialect=dialect))


def test_sqlite_claim_query_has_no_locking_clause() -> None:
    store = SQLAlchemyJobStore(sa.create_engine("sqlite://"))
    jobs = store.tables.jobs
    query = store.dialect.skip_locked(sa.select(jobs.c.id), jobs)
    assert "FOR UPDATE" not in str(query.compile(dialect=sqlite.dialect()))


async def test_enqueue_in_a_committed_session_creates_the_job(engine: sa.Engine) -> None:
    jobs, _ = service(engine)
    with Session(engine) as session, session.begin():
        job_id = await jobs.options(session=session).enqueue(Notes.write, "committed")
    assert (await jobs.get(job_id)).state is JobState.ENQUEUED


async def test_enqueue_in_a_rolled_back_session_leaves_no_job(engine: sa.Engine) -> None:
    jobs, _ = service(engine)
    with Session(engine) as session:
        session.begin()
        await jobs.options(session=session).enqueue(Notes.write, "rolled back")
        session.rollback()
    assert count_jobs(engine) == 0


# SQLite has one writer at a time: there a claim waits for the enqueuing transaction.
@pytest.mark.parametrize("engine", ["postgresql", "mariadb"], indirect=True)
async def test_job_enqueued_in_an_open_transaction_is_invisible_to_workers(
    engine: sa.Engine,
) -> None:
    jobs, store = service(engine)
    with engine.connect() as connection:
        transaction = connection.begin()
        await jobs.options(session=connection).enqueue(Notes.write, "pending")
        claimed = await store.acquire(
            ["default"], now=NOW, lease=dt.timedelta(seconds=30), limit=10, server_id="s"
        )
        assert claimed == []
        transaction.commit()
    claimed = await store.acquire(
        ["default"], now=NOW, lease=dt.timedelta(seconds=30), limit=10, server_id="s"
    )
    assert len(claimed) == 1


async def test_unique_key_holds_under_concurrent_enqueues(engine: sa.Engine) -> None:
    jobs, _ = service(engine)
    keyed = jobs.options(unique_key="report:2026-01")
    ids = await asyncio.gather(*(keyed.enqueue(Notes.write, str(i)) for i in range(20)))
    assert len(set(ids)) == 1
    assert count_jobs(engine) == 1


async def test_unique_key_is_free_again_after_the_first_job_rolled_back(
    engine: sa.Engine,
) -> None:
    jobs, _ = service(engine)
    with Session(engine) as session:
        session.begin()
        await jobs.options(session=session, unique_key="k").enqueue(Notes.write, "first")
        session.rollback()
    job_id = await jobs.options(unique_key="k").enqueue(Notes.write, "second")
    assert (await jobs.get(job_id)).args == ["second"]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the async driver we install
async def test_enqueue_through_an_async_connection(engine: sa.Engine) -> None:
    jobs, _ = service(engine)
    async_engine = create_async_engine(
        engine.url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    )
    async with async_engine.connect() as connection:
        assert isinstance(connection, AsyncConnection)
        async with connection.begin():
            job_id = await jobs.options(session=connection).enqueue(Notes.write, "async")
    await async_engine.dispose()
    assert (await jobs.get(job_id)).state is JobState.ENQUEUED


async def test_requeue_loses_a_unique_key_race_with_a_clear_refusal(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no other transaction can take the key")
    # Given a deleted job with a unique key
    jobs, store = service(engine)
    first = await jobs.options(unique_key="report:9").enqueue(Notes.write, "a")
    await jobs.delete(first)
    taker = Job(
        id=JobId(uuid.uuid4()),
        handler="Notes.write",
        args=["b"],
        kwargs={},
        queue="default",
        state=JobState.ENQUEUED,
        created_at=NOW,
        unique_key="report:9",
    )

    def take_the_key_meanwhile(job: Job, move: Move) -> Move:
        """After the requeue looked at the key: another transaction takes it and commits."""
        with engine.begin() as other:
            other.execute(store.tables.jobs.insert().values(rows.job_values(taker, NOW)))
        return move

    # When it is requeued while another transaction takes the key
    with pytest.raises(UniqueKeyHeld) as refused:
        await store.change_state(
            first,
            JobState.ENQUEUED,
            now=NOW,
            reason="requeued",
            elect=take_the_key_meanwhile,
        )

    # Then the refusal names the job that took the key, and the first job stays deleted
    assert refused.value.holder == taker.id
    assert (await jobs.get(first)).state is JobState.DELETED
