"""The `Idempotency-Key` header on POST /api/jobs and on triggering a recurring job."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from application.jobs import JobId, JobState
from host.api.problems import TYPE_PREFIX
from tests.api.conftest import wait_for_state
from tests.api.requests import assert_problem
from tests.api.test_recurring import NIGHTLY, put

BODY = {"handler": "HeartbeatJobs.beat"}


async def test_a_repeat_gets_the_same_status_and_body_also_after_the_job_finished(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "signup-7f3a"}
    first = await client.post("/api/jobs", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    await wait_for_state(app, JobId(uuid.UUID(first.json()["id"])), JobState.SUCCEEDED)

    again = await client.post("/api/jobs", json=BODY, headers=headers)

    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["location"] == first.headers["location"]
    assert first.json()["state"] == "enqueued"


async def test_the_same_key_with_another_body_is_a_422_problem(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "signup-7f3b"}
    assert (await client.post("/api/jobs", json=BODY, headers=headers)).status_code == 201

    other = await client.post("/api/jobs", json={**BODY, "unique_key": "other"}, headers=headers)

    assert assert_problem(other, 422)["type"] == f"{TYPE_PREFIX}idempotency-key-reused"


async def test_without_a_key_each_post_creates_a_job(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/jobs", json=BODY)
    second = await client.post("/api/jobs", json=BODY)

    assert first.json()["id"] != second.json()["id"]


async def test_a_repeated_trigger_returns_the_first_job(client: httpx.AsyncClient) -> None:
    await put(client, "nightly", **NIGHTLY)
    headers = {"Idempotency-Key": "run-now-1"}

    first = await client.post("/api/recurring/nightly/trigger", headers=headers)
    again = await client.post("/api/recurring/nightly/trigger", headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()


async def test_a_key_that_cannot_be_stored_is_a_422_problem(client: httpx.AsyncClient) -> None:
    for key in ["x" * 201, "bad\x00key", ""]:
        response = await client.post("/api/jobs", json=BODY, headers={"Idempotency-Key": key})
        assert assert_problem(response, 422)["type"] == f"{TYPE_PREFIX}invalid-request", key
