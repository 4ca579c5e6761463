"""R2: SIGTERM stops a worker gracefully.

A worker runs 8 jobs of 1.5 s and 2 of 60 s with a grace of 4 s when it gets SIGTERM: the
8 finish there (one run each), the 2 long ones are cancelled and released (back to `enqueued`,
the attempt not counted) and a second worker starts them at once, well before their lease
would have expired; the stopped worker exits 0 within grace + 2 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reliability.common import (
    HEARTBEAT,
    LEASE,
    histories,
    in_thread,
    job_rows,
    job_service,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs, read_witnesses, witness_table
from tests.reliability.processes import Processes
from tests.reliability.worker_process import server_id_of

SHORT_JOBS, SHORT_MS = 8, 1500
LONG_JOBS, LONG_MS = 2, 60_000
GRACE = 4.0
EXIT_SLACK = 2.0
PICKUP_BOUND = 1.5
"""Seconds from release to the second worker's start; the lease would expire no sooner than
LEASE - HEARTBEAT (3 s) after the release."""
RELEASED = "released: server stopping"


@pytest.mark.timeout(120)
async def test_sigterm_finishes_short_jobs_and_hands_long_ones_over(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine = database.engine
    jobs, store = job_service(engine)
    short = [str(await jobs.enqueue(WitnessJobs.sleep, SHORT_MS)) for _ in range(SHORT_JOBS)]
    long = [str(await jobs.enqueue(WitnessJobs.sleep, LONG_MS)) for _ in range(LONG_JOBS)]
    await store.close()
    total = SHORT_JOBS + LONG_JOBS
    with Processes(tmp_path / "logs") as processes:
        first = processes.spawn_worker(
            "first", worker_env(database.url, concurrency=total, grace=GRACE)
        )
        running = await wait_until(
            in_thread(lambda: _started_by(engine, first.pid) == total), within=30, interval=0.05
        )
        assert running, processes.outputs()
        second = processes.spawn_worker("second", worker_env(database.url, grace=1.0))
        registered = await wait_until(
            in_thread(lambda: server_id_of(second.pid) in server_ids(engine)), within=30
        )
        assert registered, processes.outputs()

        terminated_at = time.time()
        first.terminate()
        code = await asyncio.to_thread(first.wait, GRACE + EXIT_SLACK + 10)
        exited_after = time.time() - terminated_at
        handed_over = await wait_until(
            in_thread(lambda: _started_by(engine, second.pid) >= LONG_JOBS), within=15
        )
        codes = processes.stop_all(timeout=15)
        logs = processes.outputs()

    rows = job_rows(engine)
    history = histories(engine)
    runs = read_witnesses(engine)
    first_server, second_server = server_id_of(first.pid), server_id_of(second.pid)
    short_runs = [w for w in runs if w.job_id in short]
    long_runs = {job: [w for w in runs if w.job_id == job] for job in long}
    pickups = []
    for job in long:
        release = [e for e in history[job] if e.reason == RELEASED]
        restart = [w.started_at for w in long_runs[job] if w.pid == second.pid]
        if release and restart:
            pickups.append(min(restart) - release[0].at)

    figures.add("exit_code", code)
    figures.add("exit_after_sigterm_s", exited_after)
    figures.add(
        "short_finished_on_first",
        sum(w.pid == first.pid and w.finished_at is not None for w in short_runs),
    )
    figures.add("short_duplicates", len(short_runs) - len({w.job_id for w in short_runs}))
    figures.add(
        "long_released", sum(any(e.reason == RELEASED for e in history[job]) for job in long)
    )
    figures.add("max_pickup_after_release_s", max(pickups, default=float("nan")))

    assert code == 0, logs
    assert exited_after <= GRACE + EXIT_SLACK, logs
    # The 8 short jobs: one run each, on the first worker, finished there.
    assert len(short_runs) == SHORT_JOBS, short_runs
    assert {w.job_id for w in short_runs} == set(short)
    assert all(w.pid == first.pid and w.finished_at is not None for w in short_runs), short_runs
    assert all(rows[job]["state"] == "succeeded" and rows[job]["attempt"] == 1 for job in short)
    # The 2 long ones: released (not rescued), attempt not counted, restarted by the second.
    assert handed_over, logs
    for job in long:
        entries = [(e.state, e.reason) for e in history[job]]
        assert entries[:4] == [
            ("enqueued", "enqueued"),
            ("processing", f"claimed by {first_server}"),
            ("enqueued", RELEASED),
            ("processing", f"claimed by {second_server}"),
        ], entries
        assert not any("rescued" in reason for _, reason in entries), entries
        assert [(w.pid, w.attempt) for w in long_runs[job]][:2] == [
            (first.pid, 1),
            (second.pid, 1),
        ], long_runs[job]
        assert long_runs[job][0].finished_at is None  # cancelled on the first worker
        assert history[job][3].data.get("attempt") == 1, history[job][3]
    assert len(pickups) == LONG_JOBS
    assert max(pickups) <= PICKUP_BOUND < LEASE - HEARTBEAT, pickups
    assert all(c == 0 for c in codes.values()), (codes, logs)


def _started_by(engine: sa.Engine, pid: int) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(witness_table.c.pid == pid)
        return int(connection.scalar(query) or 0)
