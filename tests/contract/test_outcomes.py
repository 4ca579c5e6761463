"""Recording outcomes: text and results every store can hold, results that cannot be stored,
and outcomes kept while the store is down or refuses one of them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from uuid import UUID

import pytest
import sqlalchemy as sa

from application.jobs import JobId, JobState, RetryPolicy
from infrastructure.jobs.engine.model import Claim, Finish, Output, ServerInfo
from infrastructure.jobs.engine.store import JobClaims
from infrastructure.jobs.engine.stored_text import MAX_STORED_CHARS
from infrastructure.jobs.engine.worker import Worker, WorkerSettings
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.contract.conftest import LEASE, QUEUES, Engine
from tests.contract.handlers import (
    HOSTILE_ESCAPED,
    HOSTILE_STORED,
    Blocking,
    Hostile,
    Journal,
    Recorder,
)

S = JobState
ONCE = RetryPolicy.none()


# --- text every store can hold -------------------------------------------------------------------


@pytest.mark.smoke
async def test_hostile_error_and_log_text_is_stored_escaped_and_redacted(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=ONCE).enqueue(Hostile.raise_text)

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None
    assert view.error.message == HOSTILE_STORED
    assert HOSTILE_STORED in view.error.traceback
    assert "s3cret" not in view.error.traceback and "hunter2" not in view.error.traceback
    assert view.history[-1].data is not None
    assert view.history[-1].data["message"] == HOSTILE_STORED
    assert [line.message for line in view.logs] == [f"log {HOSTILE_STORED}"]


async def test_hostile_result_text_is_stored_escaped_but_not_redacted(engine: Engine) -> None:
    job_id = await engine.jobs.enqueue(Hostile.return_text)

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.result == {f"key {HOSTILE_ESCAPED}": HOSTILE_ESCAPED}


async def test_long_error_and_log_text_is_stored_shortened(engine: Engine) -> None:
    job_id = await engine.jobs.options(retry=ONCE).enqueue(Hostile.raise_long)

    await engine.drain()

    view = await engine.jobs.get(job_id)
    assert view.state is S.FAILED
    assert view.error is not None
    assert len(view.error.message) == MAX_STORED_CHARS
    assert "characters cut" in view.error.message
    assert len(view.error.traceback) <= MAX_STORED_CHARS
    assert [len(line.message) for line in view.logs] == [MAX_STORED_CHARS]
    data = view.history[-1].data
    assert isinstance(data["message"], str) and isinstance(data["traceback"], str)
    assert (len(data["message"]), len(data["traceback"])) == (2_000, 3_000)


# --- results that cannot be stored ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("cyclic", "deeper than 64 levels"),
        ("deep", "deeper than 64 levels"),
        ("nan", "nan, which JSON cannot represent"),
        ("inf", "inf, which JSON cannot represent"),
        ("big", "over the limit of 64000"),
    ],
)
async def test_result_that_cannot_be_stored_fails_the_job_and_the_round_is_recorded(
    engine: Engine, kind: str, reason: str
) -> None:
    bad = await engine.jobs.options(retry=ONCE).enqueue(Hostile.return_value, kind)
    good = await engine.jobs.enqueue(Recorder.record, 4)

    assert await engine.worker.run_once() == 2

    view = await engine.jobs.get(bad)
    assert view.state is S.FAILED
    assert view.error is not None
    assert reason in view.error.message
    assert (await engine.jobs.get(good)).result == 8


# --- outcomes the store does not take at once ----------------------------------------------------


class FaultyStore:
    """The engine's store as a worker sees it, with faults switched on by the test: while
    `down`, every write fails (the database unreachable); the outcome of a job in `refused`
    fails unless it is a failure (a value the database cannot hold), of a job in
    `refused_even_bare` always; with `down_after_claim`, the store goes
    down once jobs are claimed."""

    def __init__(self, store: JobClaims) -> None:
        self._store = store
        self.down = False
        self.down_after_claim = False
        self.refused: set[JobId] = set()
        self.refused_even_bare: set[JobId] = set()
        self.finish_calls = 0

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("the database is unreachable")

    async def acquire(
        self,
        queues: Sequence[str],
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int,
        server_id: str,
    ) -> list[Claim]:
        self._check()
        claims = await self._store.acquire(
            queues, now=now, lease=lease, limit=limit, server_id=server_id
        )
        self.down = self.down_after_claim
        return claims

    async def extend(
        self, tokens: Sequence[tuple[JobId, UUID, Output]], *, now: dt.datetime, lease: dt.timedelta
    ) -> set[JobId]:
        self._check()
        return await self._store.extend(tokens, now=now, lease=lease)

    async def finish(self, results: Sequence[Finish], *, now: dt.datetime) -> list[bool]:
        self.finish_calls += 1
        self._check()
        refused = [
            r
            for r in results
            if (r.job_id in self.refused and r.error is None) or r.job_id in self.refused_even_bare
        ]
        if refused:
            raise ValueError(
                f"cannot store the outcome of {refused[0].job_id}\n[parameters: {PARAMETERS}]"
            )
        return await self._store.finish(results, now=now)

    async def release(
        self, claims: Sequence[tuple[JobId, UUID]], *, now: dt.datetime, reason: str
    ) -> None:
        self._check()
        await self._store.release(claims, now=now, reason=reason)

    async def wait_for_work(self, max_seconds: float) -> None:
        await self._store.wait_for_work(max_seconds)

    async def heartbeat(self, server: ServerInfo) -> None:
        self._check()
        await self._store.heartbeat(server)

    async def remove_server(self, server_id: str) -> None:
        self._check()
        await self._store.remove_server(server_id)


PARAMETERS = "payload with a secret"
"""What a database error shows after its first line (statement parameters): never logged."""


def faulty_worker(engine: Engine) -> tuple[Worker, FaultyStore]:
    faulty = FaultyStore(engine.store)
    settings = WorkerSettings(queues=QUEUES, lease=LEASE, concurrency=8)
    worker = Worker(faulty, engine.executor, engine.clock, server_id="faulty", settings=settings)
    return worker, faulty


async def test_outcomes_kept_while_the_store_is_down_are_recorded_once_it_is_back(
    engine: Engine,
) -> None:
    worker, faulty = faulty_worker(engine)
    ids = [await engine.jobs.enqueue(Recorder.record, n) for n in range(3)]
    faulty.down_after_claim = True

    assert await worker.run_once() == 3  # the outcomes cannot be written: they are kept
    assert [(await engine.jobs.get(job_id)).state for job_id in ids] == [S.PROCESSING] * 3
    faulty.down = faulty.down_after_claim = False
    for _ in range(3):  # longer than a lease: the heartbeat keeps the jobs leased
        engine.clock.advance(LEASE - dt.timedelta(seconds=1))
        await worker.heartbeat()
        await engine.watchdog.tick()  # would rescue the jobs were their leases not extended
    assert [(await engine.jobs.get(job_id)).state for job_id in ids] == [S.PROCESSING] * 3
    await worker.run_once()  # the kept outcomes are recorded

    views = [await engine.jobs.get(job_id) for job_id in ids]
    assert [view.state for view in views] == [S.SUCCEEDED] * 3
    assert [view.result for view in views] == [0, 2, 4]
    assert Counter(Journal.values("record")) == Counter([0, 1, 2])  # each ran once


async def test_an_outcome_the_store_refuses_does_not_hold_back_the_others(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    worker, faulty = faulty_worker(engine)
    ids = [await engine.jobs.options(retry=ONCE).enqueue(Recorder.record, n) for n in range(5)]
    poison = ids[2]
    faulty.refused.add(poison)

    await worker.run_once()

    innocent = [await engine.jobs.get(job_id) for job_id in ids if job_id != poison]
    assert [view.state for view in innocent] == [S.SUCCEEDED] * 4
    assert (await engine.jobs.get(poison)).state is S.PROCESSING  # kept, to try again

    await worker.run_once()  # refused again: recorded as a bare failure

    view = await engine.jobs.get(poison)
    assert view.state is S.FAILED
    assert view.error is not None
    assert view.error.message == "the outcome could not be stored: ValueError"
    assert view.result is None
    assert "the store refused the outcome" in caplog.text
    assert PARAMETERS not in caplog.text


def drop_connections(database: sa.Engine) -> int:
    """End every connection of the store's pool to the test database, as a database restart
    would, from a connection of another engine."""
    other = sa.create_engine(database.url, poolclass=sa.NullPool)
    try:
        return _drop_others(other)
    finally:
        other.dispose()


def _drop_others(database: sa.Engine) -> int:
    with database.connect() as conn:
        if database.dialect.name == "postgresql":
            ended = conn.scalars(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return len(list(ended))
        ids = list(
            conn.scalars(
                sa.text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                )
            )
        )
        for connection_id in ids:
            conn.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
        return len(ids)


async def test_outcome_of_a_job_whose_database_connections_were_lost_is_recorded_once(
    engine: Engine,
) -> None:
    store = engine.store
    if not isinstance(store, SQLAlchemyJobStore) or store.database.dialect.name == "sqlite":
        pytest.skip("no database server whose connections could be lost")
    try:
        await run_through_dropped_connections(engine, store.database)
    finally:
        store.database.dispose()  # no dead connection left in the pool for the next test


async def run_through_dropped_connections(engine: Engine, database: sa.Engine) -> None:
    # Given a job running while the database drops every connection of the pool
    job_id = await engine.jobs.enqueue(Blocking.hold, "through the outage")
    running = engine.start_worker()
    await Journal.started["through the outage"].wait()
    assert drop_connections(database) > 0

    # When the job finishes: the first write fails on a dead connection
    Journal.gates["through the outage"].set()
    await running
    await engine.worker.run_once()  # the kept outcome, tried again

    # Then it is recorded, and the job ran once
    view = await engine.jobs.get(job_id)
    assert view.state is S.SUCCEEDED
    assert view.result == "through the outage"
    assert Journal.values("started") == ["through the outage"]


async def test_an_outcome_refused_even_as_a_bare_failure_is_left_to_the_rescue(
    engine: Engine,
) -> None:
    worker, faulty = faulty_worker(engine)
    ids = [await engine.jobs.options(retry=ONCE).enqueue(Recorder.record, n) for n in range(3)]
    poison = ids[1]
    faulty.refused_even_bare.add(poison)

    await worker.run_once()
    await worker.run_once()  # refused again, and as a bare failure too: dropped

    assert (await engine.jobs.get(poison)).state is S.PROCESSING
    engine.clock.advance(LEASE + dt.timedelta(seconds=1))
    await worker.heartbeat()  # the dropped outcome's lease is no longer extended
    await engine.watchdog.tick()
    states = [(await engine.jobs.get(job_id)).state for job_id in ids]
    assert states == [S.SUCCEEDED, S.FAILED, S.SUCCEEDED]  # rescued, no attempts left
