"""Batches, servers and statistics through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
from fastapi import FastAPI

from application.jobs import JobState
from domain.maintenance import HeartbeatJobs, TempFileJobs
from tests.api.conftest import WAIT_SECONDS, container_of, wait_for_state
from tests.api.requests import assert_problem, enqueue


async def test_batch_shows_its_progress_and_continuation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Given a batch of two jobs with a continuation, run to the end
    jobs = container_of(app).jobs()
    async with jobs.batch() as batch:
        await batch.enqueue(HeartbeatJobs.beat)
        await batch.enqueue(HeartbeatJobs.beat)
        continuation = batch.then(HeartbeatJobs.beat)
    await wait_for_state(app, continuation, JobState.SUCCEEDED)

    # When its progress is asked for
    response = await client.get(f"/api/batches/{batch.id}")

    # Then every job of it has finished
    assert response.status_code == 200
    shown = response.json()
    assert shown["id"] == str(batch.id) and shown["total"] == 2
    assert shown["counts"] == {state.value: 0 for state in JobState} | {"succeeded": 2}
    assert shown["finished"] == 2 and shown["progress"] == 1.0
    assert shown["continuation_id"] == str(continuation)


async def test_unknown_or_malformed_batch_is_refused(client: httpx.AsyncClient) -> None:
    assert assert_problem(await client.get(f"/api/batches/{uuid.uuid4()}"), 404)["type"].endswith(
        "batch-not-found"
    )
    assert_problem(await client.get("/api/batches/last-week"), 422)


async def test_servers_lists_the_embedded_worker(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if servers := (await client.get("/api/servers")).json():
                break
            await asyncio.sleep(0.05)

    [server] = servers
    assert server["queues"] == ["critical", "default", "low"]
    assert server["concurrency"] == 16
    assert server["heartbeat_at"] >= server["started_at"]


async def test_stats_count_jobs_by_state_and_outcomes_per_minute(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Given one job that succeeded, one that failed and one scheduled
    jobs = container_of(app).jobs()
    succeeded = await jobs.enqueue(HeartbeatJobs.beat)
    failed = await jobs.enqueue(TempFileJobs.cleanup, -1)
    await enqueue(client, "HeartbeatJobs.beat", delay_seconds=3600)
    await wait_for_state(app, succeeded, JobState.SUCCEEDED)
    await wait_for_state(app, failed, JobState.FAILED)

    stats = (await client.get("/api/stats")).json()

    assert stats["counts"] == {state.value: 0 for state in JobState} | {
        "succeeded": 1,
        "failed": 1,
        "scheduled": 1,
    }
    minutes = stats["per_minute"]
    assert len(minutes) == 60 and minutes == sorted(minutes, key=lambda m: m["minute"])
    assert sum(m["succeeded"] for m in minutes) == 1
    assert sum(m["failed"] for m in minutes) == 1


async def test_explanation_of_a_job_says_why_it_is_not_running(client: httpx.AsyncClient) -> None:
    created = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=3600, queue="nobody")

    response = await client.get(f"/api/jobs/{created['id']}/explanation")

    assert response.status_code == 200
    explanation = response.json()
    assert explanation["job_id"] == created["id"] and explanation["state"] == "scheduled"
    reason, unserved = explanation["reasons"]
    assert reason["obstacle"] == "scheduled"
    assert unserved["obstacle"] == "no_server" and unserved["facts"] == {"queue": "nobody"}
    assert re.search(r"\(in (1 h|59 min \d+ s)\)\.$", reason["text"])
    assert 3590 <= reason["facts"]["seconds"] <= 3600
    missing = await client.get(f"/api/jobs/{uuid.uuid4()}/explanation")
    assert assert_problem(missing, 404)["type"].endswith("job-not-found")
