"""R6c: SQLite held by another process's exclusive lock loses no job and stops no process.

On a SQLite file, a `serve` process (API and health; its worker serves another queue) and two
witness worker processes run 1,000 jobs sleeping U(100, 300) ms while another process takes the
database with `BEGIN EXCLUSIVE` and holds it 5 s, three times, 3 s apart. Afterwards every
process still ran until the test stopped it, /health/live answered 200 throughout, all 1,000
jobs succeeded and each one's finished run is witnessed (0 lost). Figures: readiness answers
other than 200 while locked, duplicate runs.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.reliability.common import (
    in_thread,
    job_service,
    job_states,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs, read_witnesses
from tests.reliability.outage import HealthLog, poll_health
from tests.reliability.processes import Processes, free_port
from tests.reliability.test_database_outage import migrate_both_chains, serve_env
from tests.reliability.ticks import all_ready

JOBS = 1000
WORKERS = 2
LOCKS = 3
LOCK_SECONDS = 5.0
LOCK_GAP = 3.0
HOLD_LOCKS = """
import sqlite3, sys, time
path, times, hold, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
for _ in range(times):
    time.sleep(gap)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    print("locked", time.time(), flush=True)
    time.sleep(hold)
    connection.execute("COMMIT")
    print("released", time.time(), flush=True)
    connection.close()
"""


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.timeout(240)
async def test_sqlite_exclusive_locks_lose_no_job(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine = database.engine
    await asyncio.to_thread(migrate_both_chains, engine)  # the job chain is there already
    jobs, store = job_service(engine)
    rng = random.Random(66)
    job_ids = [
        str(await jobs.enqueue(WitnessJobs.sleep, rng.randint(100, 300))) for _ in range(JOBS)
    ]
    await store.close()
    path = engine.url.database
    assert path is not None
    port = free_port()
    with Processes(tmp_path / "logs") as processes:
        serve = processes.spawn(
            "serve",
            ["-m", "host", "serve", "--port", str(port), "--no-migrate"],
            serve_env(database.url, tmp_path),
        )
        for i in range(WORKERS):
            processes.spawn_worker(f"worker{i}", worker_env(database.url, concurrency=4))
        assert await all_ready([(serve, port)], within=60), processes.outputs()
        registered = await wait_until(
            in_thread(lambda: len(server_ids(engine)) >= WORKERS + 1), within=30
        )
        assert registered, processes.outputs()
        health = HealthLog()
        stopping = asyncio.Event()
        polling = asyncio.create_task(poll_health(port, health, stopping))
        locker = processes.spawn(
            "locker", ["-c", HOLD_LOCKS, path, str(LOCKS), str(LOCK_SECONDS), str(LOCK_GAP)], {}
        )
        locker_code = await asyncio.to_thread(locker.wait, LOCKS * (LOCK_SECONDS + LOCK_GAP) + 30)
        drained = await wait_until(
            in_thread(lambda: set(job_states(engine)) <= {"succeeded"}), within=120, interval=0.5
        )
        stopping.set()
        await polling
        alive = {c.name: c.alive for c in processes.children if c is not locker}
        locker_output = locker.output()
        codes = processes.stop_all(timeout=20)
        logs = processes.outputs()

    states = job_states(engine)
    witnesses = read_witnesses(engine)
    finished = {w.job_id for w in witnesses if w.finished_at is not None}
    runs = Counter(w.job_id for w in witnesses)
    lost = [job for job in job_ids if job not in finished]

    figures.add("jobs", JOBS)
    figures.add("locks_taken", locker_output.count("locked "))
    figures.add("health_polls", len(health.polls))
    figures.add("live_failures", health.live_failures())
    figures.add("ready_not_200", sum(1 for _, _, ready in health.polls if ready != 200))
    figures.add("lost", len(lost))
    figures.add("duplicate_runs", sum(n - 1 for n in runs.values()))
    figures.add("succeeded", states["succeeded"])

    assert locker_code == 0, locker_output
    assert locker_output.count("released ") == LOCKS, locker_output
    assert all(alive.values()), (alive, logs)
    assert health.live_failures() == 0, health.polls
    assert drained, (states, logs)
    assert states == Counter({"succeeded": JOBS}), states
    assert lost == []
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, logs)
