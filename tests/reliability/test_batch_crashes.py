"""R10: a batch of 1,000 jobs and its continuation survive workers killed 10 times.

A batch of 1,000 witness jobs (sleeping U(150, 350) ms) with a continuation is created at once;
three worker processes x 4 slots run it while, every 2 s, a random live worker is killed with
SIGKILL and restarted 0.5 s later, 10 times. Afterwards every batch job has succeeded and the
batch's progress counts exactly 1,000 succeeded (re-executions are not counted twice); the
continuation finished exactly once (any earlier start was made by a killed worker), and it
started only after the last batch job had finished.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from application.jobs import JobState
from tests.reliability.common import (
    in_thread,
    job_service,
    job_states,
    seed_from_environment,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Database, Figures
from tests.reliability.handlers import WitnessJobs, read_witnesses
from tests.reliability.processes import Child, Processes

WORKERS = 3
SLOTS = 4
BATCH_SIZE = 1000
KILLS = 10
KILL_EVERY = 2.0
RESTART_AFTER = 0.5


@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
@pytest.mark.timeout(300)
async def test_batch_continuation_runs_once_after_all_jobs_despite_kills(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    engine = database.engine
    seed = seed_from_environment()
    rng = random.Random(seed)
    figures.add("seed", seed)
    jobs, store = job_service(engine)
    async with jobs.batch() as batch:
        members = [
            str(await batch.enqueue(WitnessJobs.sleep, rng.randint(150, 350)))
            for _ in range(BATCH_SIZE)
        ]
        continuation = str(batch.then(WitnessJobs.sleep, 0))
    env = worker_env(database.url, concurrency=SLOTS)
    with Processes(tmp_path / "logs") as processes:
        slots = [processes.spawn_worker(f"worker{i}", env) for i in range(WORKERS)]
        registered = await wait_until(
            in_thread(lambda: len(server_ids(engine)) >= WORKERS), within=30
        )
        assert registered, processes.outputs()
        killed = await _kill_workers(processes, slots, env, rng)
        drained = await wait_until(
            in_thread(lambda: set(job_states(engine)) <= {"succeeded"}), within=120, interval=0.25
        )
        codes = processes.stop_all(timeout=15)
        logs = processes.outputs()
    progress = await jobs.get_batch(batch.id)
    await store.close()

    witnesses = read_witnesses(engine)
    member_set = set(members)
    finished_runs = Counter(
        w.job_id for w in witnesses if w.job_id in member_set and w.finished_at is not None
    )
    last_member_finish = max(
        (w.finished_at for w in witnesses if w.job_id in member_set and w.finished_at),
        default=0.0,
    )
    continuation_runs = [w for w in witnesses if w.job_id == continuation]
    continuation_done = [w for w in continuation_runs if w.finished_at is not None]
    states = job_states(engine)

    figures.add("batch_jobs", BATCH_SIZE)
    figures.add("kills", len(killed))
    figures.add("member_runs", sum(1 for w in witnesses if w.job_id in member_set))
    figures.add("member_reruns", sum(1 for w in witnesses if w.job_id in member_set) - BATCH_SIZE)
    figures.add("progress_succeeded", progress.counts.get(JobState.SUCCEEDED, 0))
    figures.add("continuation_runs", len(continuation_runs))
    figures.add("continuation_finished_runs", len(continuation_done))
    if continuation_done:
        figures.add(
            "continuation_after_last_member_s", continuation_done[0].started_at - last_member_finish
        )

    assert drained, (states, logs)
    assert states == Counter({"succeeded": BATCH_SIZE + 1}), states
    assert set(finished_runs) == member_set  # 0 lost
    assert progress.total == BATCH_SIZE
    counted = {state: n for state, n in progress.counts.items() if n}
    assert counted == {JobState.SUCCEEDED: BATCH_SIZE}, progress.counts
    assert len(continuation_done) == 1, continuation_runs
    assert all(w.pid in killed for w in continuation_runs if w.finished_at is None)
    assert min(w.started_at for w in continuation_runs) >= last_member_finish
    assert all(code == 0 for code in codes.values()), (codes, logs)


async def _kill_workers(
    processes: Processes, slots: list[Child], env: dict[str, str], rng: random.Random
) -> set[int]:
    """KILLS times, every KILL_EVERY seconds: SIGKILL a random live worker, restart it after
    RESTART_AFTER seconds. The killed process ids."""
    killed: set[int] = set()
    for _ in range(KILLS):
        index = rng.randrange(len(slots))
        victim = slots[index]
        await asyncio.to_thread(victim.kill)
        killed.add(victim.pid)
        await asyncio.sleep(RESTART_AFTER)
        slots[index] = processes.spawn_worker(f"worker{index}", env)
        await asyncio.sleep(KILL_EVERY - RESTART_AFTER)
    return killed
