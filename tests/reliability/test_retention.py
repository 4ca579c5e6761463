"""R17: 100,000 expired jobs are purged in chunks while workers keep claiming.

On PostgreSQL, 100,000 succeeded jobs finished two days ago (each with a history row and a log
line) are made with one INSERT .. SELECT. A Watchdog with a one-hour retention then purges them
(its default chunk: at most 1,000 jobs per transaction) while two worker processes run a stream
of short witness jobs enqueued all along. Afterwards every expired job, history row and log line
is gone, no purge statement deleted more than a chunk of jobs, every workload job succeeded and
some were claimed while the purge ran.

Figures, not assertions: the longest purge transaction (timed on the watchdog's own engine),
the longest transaction and the longest lock wait of any connection to the database (sampled
from `pg_stat_activity`) and the workers' longest pickup (job creation to the handler's start)
during the purge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from application.jobs import JobId
from infrastructure.jobs.clock import SystemClock
from infrastructure.jobs.engine.watchdog import Watchdog, WatchdogSettings
from infrastructure.jobs.sql.database import create_engine
from infrastructure.jobs.sql.store import SQLAlchemyJobStore
from tests.reliability.common import (
    HISTORY,
    JOBS,
    TABLES,
    in_thread,
    job_service,
    job_states,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs, read_witnesses
from tests.reliability.processes import Processes

LOGS = TABLES.tables["job_logs"]
EXPIRED = 100_000
EXPIRED_REASON = "expired by the test"
WORKERS = 2
BURST = 10
BURST_EVERY = 0.25
MAX_WORKLOAD = 3000


@dataclass
class PurgeWatch:
    """What the watchdog's engine did: how long each transaction lasted, how many jobs each
    DELETE on the jobs table removed."""

    transactions: list[float] = field(default_factory=list)
    jobs_deleted: list[int] = field(default_factory=list)
    _began: dict[int, float] = field(default_factory=dict)

    def attach(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine, "commit", self._end)
        sa.event.listen(engine, "rollback", self._end)
        sa.event.listen(engine, "after_cursor_execute", self._executed)

    def _begin(self, connection: sa.Connection) -> None:
        self._began[id(connection)] = time.monotonic()

    def _end(self, connection: sa.Connection) -> None:
        began = self._began.pop(id(connection), None)
        if began is not None:
            self.transactions.append(time.monotonic() - began)

    def _executed(
        self, connection: sa.Connection, cursor: Any, statement: str, *args: object
    ) -> None:
        if statement.lstrip().upper().startswith(f"DELETE FROM {JOBS.name.upper()} "):
            self.jobs_deleted.append(int(cursor.rowcount))


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.timeout(300)
async def test_expired_jobs_are_purged_in_chunks_while_workers_claim(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine = database.engine
    jobs, store = job_service(engine)
    template = await jobs.enqueue(WitnessJobs.sleep, 1)
    made = await asyncio.to_thread(_make_expired, engine, template)
    workload = [str(template)]
    watch = PurgeWatch()
    purge_engine = create_engine(database.url)
    watch.attach(purge_engine)
    purge_store = SQLAlchemyJobStore(purge_engine)
    watchdog = Watchdog(
        purge_store,
        SystemClock(),
        WatchdogSettings(interval=0.2, retention=dt.timedelta(hours=1)),
    )
    rng = random.Random(17)
    with Processes(tmp_path / "logs") as processes:
        for i in range(WORKERS):
            processes.spawn_worker(f"worker{i}", worker_env(database.url))
        registered = await wait_until(
            in_thread(lambda: len(server_ids(engine)) >= WORKERS), within=30
        )
        assert registered, processes.outputs()
        stopping = asyncio.Event()
        sampler = asyncio.create_task(_sample_activity(engine, stopping))
        purge_start = time.time()
        purging = asyncio.create_task(watchdog.run(stopping))
        while any(await asyncio.to_thread(_expired_left, engine)) and len(workload) < MAX_WORKLOAD:
            for _ in range(BURST):
                workload.append(str(await jobs.enqueue(WitnessJobs.sleep, rng.randint(20, 80))))
            await asyncio.sleep(BURST_EVERY)
        purge_end = time.time()
        stopping.set()
        await purging
        longest_transaction, longest_lock_wait = await sampler
        drained = await wait_until(
            in_thread(lambda: set(job_states(engine)) <= {"succeeded"}), within=60, interval=0.25
        )
        codes = processes.stop_all(timeout=15)
        logs = processes.outputs()
    await purge_store.close()
    purge_engine.dispose()
    await store.close()

    left = await asyncio.to_thread(_expired_left, engine)
    witnesses = read_witnesses(engine)
    finished = {w.job_id for w in witnesses if w.finished_at is not None}
    created = await asyncio.to_thread(_created_at, engine)
    during = [w for w in witnesses if purge_start <= w.started_at <= purge_end]
    pickups = [w.started_at - created[w.job_id] for w in during if w.job_id in created]

    figures.add("expired_jobs", made)
    figures.add("purge_s", purge_end - purge_start)
    figures.add("purge_transactions", len(watch.transactions))
    figures.add("purge_deletes_of_jobs", len(watch.jobs_deleted))
    figures.add("max_jobs_per_delete", max(watch.jobs_deleted, default=0))
    figures.add("longest_purge_transaction_s", max(watch.transactions, default=0.0))
    figures.add("longest_transaction_any_connection_s", longest_transaction)
    figures.add("longest_lock_wait_any_connection_s", longest_lock_wait)
    figures.add("workload_jobs", len(workload))
    figures.add("claimed_during_purge", len(during))
    figures.add("longest_pickup_during_purge_s", max(pickups, default=0.0))

    assert made == EXPIRED
    assert left == (0, 0, 0), left
    assert sum(watch.jobs_deleted) == EXPIRED
    assert max(watch.jobs_deleted) <= WatchdogSettings().chunk
    assert drained, logs
    assert set(workload) <= finished  # 0 lost
    assert during, "no job was claimed while the purge ran"
    assert all(code == 0 for code in codes.values()), (codes, logs)


def _make_expired(engine: sa.Engine, template: JobId) -> int:
    """EXPIRED copies of the template job, succeeded two days ago, each with a history row
    and a log line; how many jobs were made."""
    finished = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    copies = sa.select(sa.func.generate_series(1, EXPIRED).column_valued("n")).subquery()
    replaced: dict[str, sa.ColumnElement[Any]] = {
        "id": sa.func.gen_random_uuid(),
        "state": sa.literal("succeeded"),
        "created_at": sa.literal(finished, JOBS.c.created_at.type),
        "state_at": sa.literal(finished, JOBS.c.state_at.type),
    }
    columns = [replaced.get(c.name, c) for c in JOBS.c]
    source = (
        sa.select(*columns).select_from(JOBS.join(copies, sa.true())).where(JOBS.c.id == template)
    )
    expired = sa.select(JOBS.c.id, JOBS.c.state_at).where(JOBS.c.state == "succeeded")
    with engine.begin() as connection:
        connection.execute(JOBS.insert().from_select(list(JOBS.c.keys()), source))
        history = expired.add_columns(sa.literal("succeeded"), sa.literal(EXPIRED_REASON))
        connection.execute(
            HISTORY.insert().from_select(["job_id", "at", "state", "reason"], history)
        )
        lines = expired.add_columns(sa.literal("INFO"), sa.literal(EXPIRED_REASON))
        connection.execute(LOGS.insert().from_select(["job_id", "at", "level", "message"], lines))
        made = connection.scalar(sa.select(sa.func.count()).where(JOBS.c.state == "succeeded"))
    return int(made or 0)


def _expired_left(engine: sa.Engine) -> tuple[int, int, int]:
    """Expired jobs, their history rows and their log lines still stored."""
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    count = sa.func.count()
    with engine.connect() as connection:
        jobs_left = connection.scalar(sa.select(count).where(JOBS.c.state_at < old))
        history_left = connection.scalar(sa.select(count).where(HISTORY.c.reason == EXPIRED_REASON))
        logs_left = connection.scalar(sa.select(count).where(LOGS.c.message == EXPIRED_REASON))
    return int(jobs_left or 0), int(history_left or 0), int(logs_left or 0)


def _created_at(engine: sa.Engine) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(JOBS.c.id, JOBS.c.created_at)).all()
    return {str(job_id): created.timestamp() for job_id, created in rows}


async def _sample_activity(engine: sa.Engine, stopping: asyncio.Event) -> tuple[float, float]:
    """Until `stopping`: the longest open transaction and the longest lock wait seen among
    the other clients of this database (autovacuum aside), sampled every 50 ms (seconds)."""
    query = sa.text(
        "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0),"
        " coalesce(extract(epoch FROM max(now() - query_start)"
        " FILTER (WHERE wait_event_type = 'Lock')), 0)"
        " FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    )
    longest_transaction = longest_lock_wait = 0.0

    def sample() -> tuple[float, float]:
        with engine.connect() as connection:
            transaction, lock_wait = connection.execute(query).one()
            return float(transaction), float(lock_wait)

    while not stopping.is_set():
        transaction, lock_wait = await asyncio.to_thread(sample)
        longest_transaction = max(longest_transaction, transaction)
        longest_lock_wait = max(longest_lock_wait, lock_wait)
        await asyncio.sleep(0.05)
    return longest_transaction, longest_lock_wait
