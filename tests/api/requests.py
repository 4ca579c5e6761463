"""Requests the API tests share: enqueue, read a job, check a problem response."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


async def enqueue(client: httpx.AsyncClient, handler: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/jobs", json={"handler": handler, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["instance"] == response.request.url.path
    return problem
