"""The business API (/v1): thin routes over the use cases, domain errors as problems, rows and
jobs written together in the service's database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from application.jobs import JobId, JobState
from tests.api.conftest import client_of, container_of
from tests.api.requests import assert_problem

TYPE = "urn:jobs-service:problem:"


@pytest.fixture
async def client(idle_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of the service without a worker: jobs stay as the calls left them."""
    async with client_of(idle_app) as client:
        yield client


ADA = {"email": "ada@example.org", "name": "Ada Lovelace"}


async def test_registering_writes_the_user_and_its_welcome_job(
    idle_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/users", json=ADA)

    assert response.status_code == 201, response.text
    body = response.json()
    container = container_of(idle_app)
    user = await container.adapters.users().get(uuid.UUID(body["user_id"]))
    assert user is not None and user.email == ADA["email"]
    welcome = await container.jobs().get(JobId(uuid.UUID(body["welcome_job_id"])))
    assert welcome.state is JobState.ENQUEUED and welcome.handler == "EmailJobs.send_welcome"


async def test_a_duplicate_registration_is_a_conflict_problem_and_writes_no_job(
    idle_app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post("/v1/users", json=ADA)
    jobs_before = await _job_count(idle_app)

    response = await client.post("/v1/users", json={**ADA, "email": "ADA@example.org"})

    problem = assert_problem(response, 409)
    assert problem["type"] == f"{TYPE}email-already-registered"
    assert await _job_count(idle_app) == jobs_before


async def test_an_unknown_invoice_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/v1/invoices/{uuid.uuid4()}/reminder")

    problem = assert_problem(response, 404)
    assert problem["type"] == f"{TYPE}invoice-not-found"


async def test_a_value_the_domain_refuses_is_an_invalid_value_problem(
    client: httpx.AsyncClient,
) -> None:
    upside_down = {
        "recipient": "ops@example.org",
        "period_start": "2026-04-01T00:00:00Z",
        "period_end": "2026-03-01T00:00:00Z",
    }
    malformed = {"email": "not an address", "name": "Ada"}

    for path, body in [("/v1/reports", upside_down), ("/v1/users", malformed)]:
        problem = assert_problem(await client.post(path, json=body), 422)
        assert problem["type"] == f"{TYPE}invalid-value", path


async def test_hostile_text_is_refused_before_it_reaches_the_database(
    client: httpx.AsyncClient,
) -> None:
    for name in ["Ada\x00", "\ud800", "x" * 10_000]:
        body = f'{{"email": "ada@example.org", "name": {_json_string(name)}}}'
        response = await client.post(
            "/v1/users", content=body, headers={"content-type": "application/json"}
        )
        assert_problem(response, 422)


async def _job_count(app: FastAPI) -> int:
    return sum((await container_of(app).admin().count_by_state()).values())


def _json_string(text: str) -> str:
    """JSON text of `text`, lone surrogates escaped (json.dumps would too, but says so)."""
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0xD800 <= ord(c) < 0xE000 else c for c in text
    )
    return f'"{escaped}"'
