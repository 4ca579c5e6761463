"""The reliability scenarios on the dramatiq backend: worker processes take their jobs from a
real broker (RabbitMQ with SQLite state, Redis with PostgreSQL state), the test's client
writes the outbox and the workers' relays publish it.

- kill -9 a worker 10 times during 500 jobs: 0 lost, duplicates only among orphans (the
  scenario and assertions of `test_kill9`, more rounds);
- enqueue in the caller's transaction, commit or roll back 50/50, 300 times: jobs exist (and
  run, once) iff committed (`test_transactional_enqueue`);
- SIGTERM: short jobs finish, long ones are handed over (`test_graceful_stop`);
- three `serve` processes with a `* * * * * *` recurring job: every tick once (`test_cron`).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.brokers import BROKER_URLS, reachable_broker
from tests.reliability import (
    test_cron,
    test_graceful_stop,
    test_kill9,
    test_transactional_enqueue,
    ticks,
)
from tests.reliability.common import BROKER_URL, in_thread, job_states, wait_until
from tests.reliability.conftest import Database, Figures
from tests.reliability.processes import Processes, free_port

BROKER_AND_STATE = [("rabbitmq", "sqlite"), ("redis", "postgresql")]


@pytest.fixture
def broker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Worker processes (and the test's client) on the dramatiq backend with this broker, on
    queues of their own."""
    kind: str = request.param
    reachable_broker(kind).close()
    monkeypatch.setenv(BROKER_URL, BROKER_URLS[kind])
    monkeypatch.setenv("RELIABILITY_QUEUE_PREFIX", f"reliability-{uuid.uuid4().hex[:10]}.")
    return kind


@pytest.mark.parametrize(("broker", "database"), BROKER_AND_STATE, indirect=True)
@pytest.mark.timeout(300)
async def test_kill9_workers_on_dramatiq_lose_no_job(
    broker: str,
    database: Database,
    figures: Figures,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(test_kill9, "KILLS", 10)
    monkeypatch.setattr(test_kill9, "BURST", 50)
    monkeypatch.setattr(test_kill9, "JOB_COUNT", 500)
    await test_kill9.test_kill9_workers_lose_no_job(database, figures, tmp_path)


@pytest.mark.parametrize(("broker", "database"), BROKER_AND_STATE, indirect=True)
@pytest.mark.timeout(180)
async def test_jobs_on_dramatiq_exist_iff_their_transaction_committed(
    broker: str, database: Database, figures: Figures, tmp_path: Path
) -> None:
    await test_transactional_enqueue.test_jobs_exist_iff_their_transaction_committed(
        database, figures, tmp_path
    )


@pytest.mark.parametrize(("broker", "database"), BROKER_AND_STATE, indirect=True)
@pytest.mark.timeout(120)
async def test_sigterm_on_dramatiq_finishes_short_jobs_and_hands_long_ones_over(
    broker: str, database: Database, figures: Figures, tmp_path: Path
) -> None:
    await test_graceful_stop.test_sigterm_finishes_short_jobs_and_hands_long_ones_over(
        database, figures, tmp_path
    )


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.timeout(240)
async def test_cron_on_dramatiq_ticks_exactly_once_across_three_serve_processes(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    """`test_cron`'s scenario on one database, the three `serve` processes on the dramatiq
    backend with RabbitMQ; every tick's job also runs."""
    reachable_broker("rabbitmq").close()
    await ticks.declare_every_second(database.engine)
    env = {
        **ticks.serve_env(database, tmp_path),
        "APP_JOBS__BACKEND": "dramatiq",
        "APP_JOBS__OPTIONS__BROKER_URL": BROKER_URLS["rabbitmq"],
        "APP_JOBS__OPTIONS__QUEUE_PREFIX": f"reliability-{uuid.uuid4().hex[:10]}.",
    }
    with Processes(tmp_path / "logs") as processes:
        servers = []
        for n in range(test_cron.SERVERS_PER_DATABASE):
            port = free_port()
            child = processes.spawn(f"serve{n}", ["-m", "host", "serve", "--port", str(port)], env)
            servers.append((child, port))
        ready = await ticks.all_ready(servers, within=60)
        assert ready, processes.outputs()
        t0 = time.time()
        await asyncio.sleep(test_cron.RUN_SECONDS)
        t1 = time.time()
        ran = await wait_until(
            in_thread(lambda: set(job_states(database.engine)) <= {"succeeded"}), within=30
        )
        codes = processes.stop_all(timeout=30)
        logs = processes.outputs()

    margin = test_cron.MARGIN
    problems = ticks.check_ticks(
        database.engine,
        t0 + margin,
        t1 - margin,
        figures,
        at_least=int(test_cron.RUN_SECONDS - 2 * margin - 1),
    )
    figures.add("tick_jobs_by_state", dict(job_states(database.engine)))
    assert problems == [], problems
    assert ran, (job_states(database.engine), logs)
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, logs)
