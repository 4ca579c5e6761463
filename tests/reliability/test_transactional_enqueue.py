"""R8: a job enqueued in the caller's transaction exists if and only if that transaction
commits, and no worker sees it before the commit.

300 times: insert a business row and enqueue a job for it in one SQLAlchemy Session
transaction, then commit or roll back (50/50), while two worker processes poll the queue. The
handler checks that its business row is committed and records a violation otherwise.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.reliability.common import (
    histories,
    in_thread,
    job_rows,
    job_service,
    job_states,
    seed_from_environment,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs, business_table, read_witnesses
from tests.reliability.processes import Processes

ITERATIONS = 300
WORKERS = 2


@pytest.mark.timeout(180)
async def test_jobs_exist_iff_their_transaction_committed(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine = database.engine
    jobs, store = job_service(engine)
    seed = seed_from_environment()
    rng = random.Random(seed)
    figures.add("seed", seed)
    committed: dict[str, str] = {}
    rolled_back: dict[str, str] = {}
    with Processes(tmp_path / "logs") as processes:
        for n in range(WORKERS):
            processes.spawn_worker(f"worker{n}", worker_env(database.url))
        registered = await wait_until(
            in_thread(lambda: len(server_ids(engine)) >= WORKERS), within=30
        )
        assert registered, processes.outputs()
        for i in range(ITERATIONS):
            key = f"order-{i}"
            with Session(engine) as session:
                session.execute(business_table.insert().values(key=key))
                job_id = await jobs.options(session=session).enqueue(
                    WitnessJobs.check_business, key
                )
                await asyncio.sleep(rng.uniform(0, 0.01))  # workers poll meanwhile
                if rng.random() < 0.5:
                    session.commit()
                    committed[str(job_id)] = key
                else:
                    session.rollback()
                    rolled_back[str(job_id)] = key
        drained = await wait_until(
            in_thread(lambda: job_states(engine) == Counter({"succeeded": len(committed)})),
            within=60,
            interval=0.25,
        )
        codes = processes.stop_all(timeout=15)
        logs = processes.outputs()
    await store.close()

    rows = job_rows(engine)
    history = histories(engine)
    runs = read_witnesses(engine)
    with engine.connect() as connection:
        business = set(connection.scalars(sa.select(business_table.c.key)))
    runs_per_job = Counter(w.job_id for w in runs)
    violations = [w for w in runs if w.violation is not None]
    orphans = set(rows) & set(rolled_back)
    missing = set(committed) - set(rows)

    figures.add("iterations", ITERATIONS)
    figures.add("committed", len(committed))
    figures.add("rolled_back", len(rolled_back))
    figures.add("jobs_of_rolled_back", len(orphans))
    figures.add("committed_without_job", len(missing))
    figures.add("violations", len(violations))
    figures.add("duplicates", sum(1 for count in runs_per_job.values() if count > 1))

    assert drained, (job_states(engine), logs)
    assert business == set(committed.values())
    assert set(rows) == set(committed), (orphans, missing)
    assert not set(history) & set(rolled_back)
    assert not set(runs_per_job) & set(rolled_back)
    assert violations == [], violations
    assert runs_per_job == Counter(dict.fromkeys(committed, 1))
    assert all(code == 0 for code in codes.values()), (codes, logs)
