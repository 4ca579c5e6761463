"""Rows written before handler text was made storable: the API still shows them (R4)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import FastAPI

from infrastructure.jobs.sql.tables import build_metadata
from tests.api.conftest import client_of, container_of
from tests.api.requests import enqueue, get_job
from tests.engine_loop import database_of

OLD_RESULT = '{"key \\udc80": ["lone \\ud800", NaN, Infinity, 1.5]}'
"""A result as older versions stored it: JSON escapes of lone surrogates, and NaN."""


async def test_old_result_with_lone_surrogates_and_nan_is_shown_escaped(
    idle_app: FastAPI,
) -> None:
    async with client_of(idle_app) as client:
        created = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=3600)
        jobs = build_metadata().tables["jobs"]
        with database_of(container_of(idle_app)).begin() as conn:
            conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == uuid.UUID(created["id"]))
                .values(result=OLD_RESULT)
            )

        job = await get_job(client, created["id"])

    assert job["result"] == {"key \\udc80": ["lone \\ud800", "nan", "inf", 1.5]}


async def test_old_history_data_with_lone_surrogates_is_shown_escaped(
    idle_app: FastAPI,
) -> None:
    async with client_of(idle_app) as client:
        created = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=3600)
        history = build_metadata().tables["job_history"]
        with database_of(container_of(idle_app)).begin() as conn:
            conn.execute(
                sa.update(history)
                .where(history.c.job_id == uuid.UUID(created["id"]))
                .values(data='{"message": "boom \\udc80"}')
            )

        response = await client.get(f"/api/jobs/{created['id']}")

    assert response.status_code == 200, response.text
    assert response.json()["history"][0]["data"] == {"message": "boom \\udc80"}
