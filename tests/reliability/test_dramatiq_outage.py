"""A broker outage on the dramatiq backend: a Redis server of the test's own (no persistence)
is stopped for 15 s during a run, then started again empty. Enqueues during the outage are
accepted (the outbox keeps their messages), nothing is lost (the messages the restart lost
are published again by the relays' sweep), and the backlog drains; how long after recovery
is a figure.

The shared RabbitMQ is not stopped here (other test runs use it); the relay's retry and drain
are the same code on both brokers, and `test_dramatiq_outbox` checks them on RabbitMQ.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.reliability.common import (
    BROKER_URL,
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
from tests.reliability.processes import Processes, free_port

WORKERS = 2
OUTAGE = 15.0
BEFORE, DURING, AFTER = 100, 100, 50


class RedisServer:
    """A redis-server on `port` that the test stops and starts."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.timeout(180)
async def test_redis_restarted_empty_during_a_run_loses_no_job(
    database: Database, figures: Figures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = database.engine
    rng = random.Random(seed_from_environment())
    server = RedisServer(free_port(), tmp_path)
    server.start()
    monkeypatch.setenv(BROKER_URL, f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setenv("RELIABILITY_QUEUE_PREFIX", "outage.")
    jobs, store = job_service(engine)
    job_ids: list[str] = []

    async def enqueue(count: int) -> None:
        for _ in range(count):
            job_ids.append(str(await jobs.enqueue(WitnessJobs.sleep, rng.randint(10, 50))))

    try:
        with Processes(tmp_path / "logs") as processes:
            for n in range(WORKERS):
                processes.spawn_worker(f"worker{n}", worker_env(database.url))
            registered = await wait_until(
                in_thread(lambda: len(server_ids(engine)) >= WORKERS), within=30
            )
            assert registered, processes.outputs()
            await enqueue(BEFORE)
            server.stop()
            outage_end = time.monotonic() + OUTAGE
            await enqueue(DURING)  # raises if an enqueue is refused
            await asyncio.sleep(max(0.0, outage_end - time.monotonic()))
            server.start()
            recovered_at = time.monotonic()
            await enqueue(AFTER)
            drained = await wait_until(
                in_thread(lambda: job_states(engine) == Counter({"succeeded": len(job_ids)})),
                within=90,
                interval=0.25,
            )
            drained_after = time.monotonic() - recovered_at
            codes = processes.stop_all(timeout=15)
            logs = processes.outputs()
    finally:
        server.stop()
        await store.close()

    runs = Counter(w.job_id for w in read_witnesses(engine) if w.finished_at is not None)
    lost = [job for job in job_ids if runs[job] == 0]
    figures.add("jobs", len(job_ids))
    figures.add("enqueued_during_outage", DURING)
    figures.add("outage_s", OUTAGE)
    figures.add("lost", len(lost))
    figures.add("duplicates", sum(1 for count in runs.values() if count > 1))
    figures.add("drained_after_recovery_s", drained_after)

    assert drained, (job_states(engine), logs)
    assert lost == []
    assert all(code == 0 for code in codes.values()), (codes, logs)
