"""R6, R6b: a PostgreSQL or MariaDB outage loses no job and stops no process.

On a server of the test's own (the shared servers are never stopped), a `serve` process
(API and health; its worker serves another queue) and two witness worker processes
run 1,000 jobs sleeping U(100, 300) ms. Meanwhile every connection to the database is
cut (`pg_terminate_backend`, `KILL CONNECTION`) three times, 4 s apart, then the server is
stopped (PostgreSQL immediately, MariaDB by a shutdown) for 15 s and started again; while it
is down, a listener on its port counts the connection attempts. Afterwards: every process
still ran until the test stopped it, /health/live answered 200 throughout, /health/ready
answered 503 during the outage and 200 after it, all 1,000 jobs succeeded and each one's
finished run is witnessed (0 lost).

Figures: how soon readiness turned 503 after the stop and 200 after the start, connection
attempts per process and second while down, duplicate runs.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa

from infrastructure.jobs.sql import migrate
from infrastructure.jobs.sql.database import create_engine
from infrastructure.persistence.sql import migrate as business_migrate
from tests.reliability.common import (
    in_thread,
    job_service,
    job_states,
    server_ids,
    wait_until,
    worker_env,
)
from tests.reliability.conftest import Figures
from tests.reliability.handlers import WitnessJobs, create_witness_tables, read_witnesses
from tests.reliability.outage import AttemptCounter, HealthLog, poll_health
from tests.reliability.private_servers import (
    PrivateServer,
    create_database,
    private_mariadb,
    private_postgres,
    terminate_connections,
)
from tests.reliability.processes import Processes, free_port
from tests.reliability.ticks import all_ready

JOBS = 1000
WORKERS = 2
TERMINATIONS = 3
TERMINATE_EVERY = 4.0
DOWN_SECONDS = 15.0
DATABASE = "jobs"


SERVERS: dict[str, Callable[[], AbstractContextManager[PrivateServer]]] = {
    "postgresql": private_postgres,
    "mariadb": private_mariadb,
}


@pytest.mark.parametrize("kind", list(SERVERS))
@pytest.mark.timeout(360)
async def test_database_outage_loses_no_job(kind: str, figures: Figures, tmp_path: Path) -> None:
    with SERVERS[kind]() as server:
        await asyncio.to_thread(create_database, server, DATABASE)
        url = server.url(DATABASE)
        engine = create_engine(url)
        try:
            await _outage_scenario(server, engine, url, figures, tmp_path)
        finally:
            engine.dispose()


def migrate_both_chains(engine: sa.Engine) -> None:
    """What `jobs-service migrate` does: `serve --no-migrate` waits for both chains."""
    migrate.upgrade(engine)
    business_migrate.upgrade(engine)


async def _outage_scenario(
    server: PrivateServer, engine: sa.Engine, url: str, figures: Figures, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate_both_chains, engine)
    await asyncio.to_thread(create_witness_tables, engine)
    jobs, store = job_service(engine)
    rng = random.Random(6)
    job_ids = [
        str(await jobs.enqueue(WitnessJobs.sleep, rng.randint(100, 300))) for _ in range(JOBS)
    ]
    await store.close()
    engine.dispose()
    # The test's own reads check their pooled connection first: the outage cuts them all.
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        await _run_through_outage(server, engine, url, job_ids, figures, tmp_path)
    finally:
        engine.dispose()


async def _run_through_outage(
    server: PrivateServer,
    engine: sa.Engine,
    url: str,
    job_ids: list[str],
    figures: Figures,
    tmp_path: Path,
) -> None:
    port = free_port()
    with Processes(tmp_path / "logs") as processes:
        serve = processes.spawn(
            "serve",
            ["-m", "host", "serve", "--port", str(port), "--no-migrate"],
            serve_env(url, tmp_path),
        )
        workers = [
            processes.spawn_worker(f"worker{i}", worker_env(url, concurrency=4))
            for i in range(WORKERS)
        ]
        assert await all_ready([(serve, port)], within=60), processes.outputs()
        registered = await wait_until(
            in_thread(lambda: len(server_ids(engine)) >= WORKERS + 1), within=30
        )
        assert registered, processes.outputs()
        health = HealthLog()
        stopping = asyncio.Event()
        polling = asyncio.create_task(poll_health(port, health, stopping))

        terminated = 0
        for _ in range(TERMINATIONS):
            await asyncio.sleep(TERMINATE_EVERY)
            terminated += await asyncio.to_thread(terminate_connections, server)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(server.stop)
        stopped_at = time.time()
        async with AttemptCounter(server.port) as counter:
            await asyncio.sleep(DOWN_SECONDS)
        down_for = time.time() - stopped_at
        await asyncio.to_thread(server.start)
        started_at = time.time()

        drained = await wait_until(
            in_thread(lambda: set(job_states(engine)) <= {"succeeded"}), within=120, interval=0.5
        )
        await asyncio.sleep(1.0)  # a last health poll or two after the drain
        stopping.set()
        await polling
        alive = {child.name: child.alive for child in processes.children}
        codes = processes.stop_all(timeout=20)
        logs = processes.outputs()

    states = job_states(engine)
    witnesses = read_witnesses(engine)
    finished = {w.job_id for w in witnesses if w.finished_at is not None}
    runs = Counter(w.job_id for w in witnesses)
    lost = [job for job in job_ids if job not in finished]
    ready_down = health.first_ready(503, stopped_at)
    ready_back = health.first_ready(200, started_at)

    figures.add("jobs", JOBS)
    figures.add("connections_terminated", terminated)
    figures.add("health_polls", len(health.polls))
    figures.add("live_failures", health.live_failures())
    figures.add("ready_503_after_stop_s", -1.0 if ready_down is None else ready_down)
    figures.add("ready_200_after_start_s", -1.0 if ready_back is None else ready_back)
    figures.add("attempts_while_down", counter.attempts)
    # Each readiness poll of the serve process tries the database once: not the engine's doing.
    probes = sum(1 for at, _, _ in health.polls if stopped_at <= at <= stopped_at + down_for)
    per_process_per_s = max(0, counter.attempts - probes) / (len(workers) + 1) / down_for
    figures.add("readiness_probes_while_down", probes)
    figures.add("attempts_per_process_per_s", per_process_per_s)
    figures.add("lost", len(lost))
    figures.add("duplicate_runs", sum(n - 1 for n in runs.values()))
    figures.add("succeeded", states["succeeded"])

    assert all(alive.values()), (alive, logs)
    assert per_process_per_s <= 1.0, "reconnect storm: more than one attempt a second"
    assert health.live_failures() == 0, health.polls
    assert ready_down is not None, health.polls
    assert ready_back is not None, health.polls
    assert drained, (states, logs)
    assert states == Counter({"succeeded": JOBS}), states
    assert lost == []
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, logs)


def serve_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "APP_DB__URL": url,
        "APP_JOBS__QUEUES": '["serve-only"]',
        "APP_JOBS__POLL_SECONDS": "0.1",
        "APP_JOBS__SAMPLE_EVERY_MINUTE": "false",
        "APP_JOBS__SHUTDOWN_GRACE_SECONDS": "2",
        "APP_TEMP_DIRECTORY": str(tmp_path / "tmp"),
        "APP_LOG_LEVEL": "WARNING",
    }
