"""The reliability scenarios on the dramatiq backend: worker processes take their jobs from a
real broker (RabbitMQ with SQLite state, Redis with PostgreSQL state), the test's client
writes the outbox and the workers' relays publish it.

- kill -9 a worker 10 times during 500 jobs: 0 lost, duplicates only among orphans (the
  scenario and assertions of `test_kill9`, more rounds);
- enqueue in the caller's transaction, commit or roll back 50/50, 300 times: jobs exist (and
  run, once) iff committed (`test_transactional_enqueue`);
- SIGTERM: short jobs finish, long ones are handed over (`test_graceful_stop`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.brokers import BROKER_URLS, reachable_broker
from tests.reliability import test_graceful_stop, test_kill9, test_transactional_enqueue
from tests.reliability.common import BROKER_URL
from tests.reliability.conftest import Database, Figures

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
