"""One live service for the dashboard's HTTP and browser tests (session-wide: each test
makes jobs of its own, on queues or with texts of its own)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dashboard.server import LiveServer, live_settings, serving

WAIT_SECONDS = 20.0


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(live_settings(tmp_path_factory.mktemp("live"))) as server:
        yield server


def enqueue(live: LiveServer, handler: str, *args: Any, **body: Any) -> str:
    with live.admin_api() as api:
        response = api.post("/api/jobs", json={"handler": handler, "args": list(args), **body})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def job(live: LiveServer, job_id: str) -> dict[str, Any]:
    with live.admin_api() as api:
        found: dict[str, Any] = api.get(f"/api/jobs/{job_id}").json()
    return found


def wait_for_state(live: LiveServer, job_id: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (found := job(live, job_id))["state"] not in states:
        assert time.monotonic() < deadline, f"job {job_id} stayed {found['state']}"
        time.sleep(0.05)
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    return client.get(path, params=params)
