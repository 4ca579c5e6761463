"""Handlers and jobs through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from application.jobs import JobId, JobState
from tests.api.conftest import WAIT_SECONDS, client_of, container_of, wait_for_state
from tests.api.requests import assert_problem, enqueue, get_job
from tests.engine_loop import engine_of

HOUR = 3600


# --- handlers --------------------------------------------------------------------------------


async def test_handlers_are_listed_with_the_json_schema_of_their_arguments(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/handlers")

    assert response.status_code == 200
    handlers = {h["name"]: h for h in response.json()}
    welcome = handlers["EmailJobs.send_welcome"]
    assert welcome["queue"] == "critical" and welcome["is_async"] is True
    assert welcome["arguments"]["required"] == ["user_id"]
    assert welcome["arguments"]["properties"]["user_id"]["format"] == "uuid"
    assert handlers["HeartbeatJobs.beat"]["is_async"] is False


# --- creating jobs ---------------------------------------------------------------------------


async def test_enqueued_job_runs_and_shows_its_history_log_lines_and_result(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Given a job enqueued through the API
    response = await client.post("/api/jobs", json={"handler": "HeartbeatJobs.beat"})
    assert response.status_code == 201
    created = response.json()
    assert created["state"] in ("enqueued", "processing", "succeeded")
    assert response.headers["location"] == f"/api/jobs/{created['id']}"

    # When the embedded worker has run it
    await wait_for_state(app, JobId(uuid.UUID(created["id"])), JobState.SUCCEEDED)

    # Then the API shows how it got there, what it logged and what it returned
    job = await get_job(client, created["id"])
    assert job["state"] == "succeeded" and job["attempt"] == 1 and job["error"] is None
    assert [step["state"] for step in job["history"]] == ["enqueued", "processing", "succeeded"]
    assert any("heartbeat at" in line["message"] for line in job["logs"])
    assert isinstance(job["result"], str) and job["queue"] == "low"
    assert job["parent_id"] is None and job["batch_id"] is None and job["recurring_id"] is None


async def test_failed_job_shows_its_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await enqueue(client, "TempFileJobs.cleanup", kwargs={"older_than_hours": -1})

    await wait_for_state(app, JobId(uuid.UUID(created["id"])), JobState.FAILED)

    job = await get_job(client, created["id"])
    assert job["error"]["type"].endswith("ValueError")
    assert "must not be negative" in job["error"]["message"]
    assert job["args"] == [-1] and job["kwargs"] == {}


async def test_delay_schedules_the_job_that_much_later(client: httpx.AsyncClient) -> None:
    before = dt.datetime.now(dt.UTC)

    created = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)

    job = await get_job(client, created["id"])
    assert created["state"] == job["state"] == "scheduled"
    run_at = dt.datetime.fromisoformat(job["run_at"])
    assert before + dt.timedelta(seconds=HOUR) <= run_at < before + dt.timedelta(seconds=HOUR + 60)


async def test_run_at_schedules_the_job_at_that_instant(client: httpx.AsyncClient) -> None:
    created = await enqueue(
        client, "HeartbeatJobs.beat", run_at="2100-01-01T12:00:00+02:00", queue="default"
    )

    job = await get_job(client, created["id"])
    assert job["state"] == "scheduled" and job["queue"] == "default"
    assert dt.datetime.fromisoformat(job["run_at"]) == dt.datetime(2100, 1, 1, 10, tzinfo=dt.UTC)


async def test_delay_and_run_at_exclude_each_other(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/jobs",
        json={
            "handler": "HeartbeatJobs.beat",
            "delay_seconds": 5,
            "run_at": "2100-01-01T00:00:00Z",
        },
    )

    assert "at most one" in assert_problem(response, 422)["detail"]


async def test_naive_or_malformed_run_at_is_refused(client: httpx.AsyncClient) -> None:
    for run_at in ("2100-01-01T00:00:00", "tomorrow", 4102444800, "0001-01-01T00:00:00+01:00"):
        response = await client.post(
            "/api/jobs", json={"handler": "HeartbeatJobs.beat", "run_at": run_at}
        )
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["loc"] == ["body", "run_at"]


async def test_unknown_handler_is_refused_by_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs", json={"handler": "os.system", "args": ["ls"]})

    problem = assert_problem(response, 422)
    assert "'os.system'" in problem["detail"]
    assert problem["type"].endswith("handler-not-registered")


async def test_argument_of_the_wrong_type_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/jobs", json={"handler": "EmailJobs.send_welcome", "args": [42]}
    )

    assert assert_problem(response, 422)["argument"] == "user_id"


async def test_missing_or_unexpected_arguments_are_named(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/jobs", json={"handler": "EmailJobs.send_welcome"})
    unexpected = await client.post(
        "/api/jobs", json={"handler": "HeartbeatJobs.beat", "kwargs": {"loud": True}}
    )

    assert assert_problem(missing, 422)["argument"] == "user_id"
    assert "loud" in assert_problem(unexpected, 422)["detail"]


async def test_body_that_is_not_a_job_is_refused_with_each_invalid_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/jobs", json={"args": "not a list", "queue": "", "colour": "blue"}
    )

    problem = assert_problem(response, 422)
    fields = {tuple(error["loc"]) for error in problem["errors"]}
    assert {("body", "handler"), ("body", "args"), ("body", "queue"), ("body", "colour")} <= fields


async def test_continuation_waits_for_its_parent(client: httpx.AsyncClient) -> None:
    parent = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)

    child = await enqueue(client, "HeartbeatJobs.beat", continue_after=parent["id"])

    assert child["state"] == "awaiting"
    assert (await get_job(client, child["id"]))["parent_id"] == parent["id"]


async def test_continuation_of_an_unknown_job_names_continue_after(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/jobs", json={"handler": "HeartbeatJobs.beat", "continue_after": str(uuid.uuid4())}
    )

    assert assert_problem(response, 422)["argument"] == "continue_after"


async def test_unique_key_returns_the_active_job(client: httpx.AsyncClient) -> None:
    first = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR, unique_key="once")

    second = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR, unique_key="once")

    assert second["id"] == first["id"]
    assert (await get_job(client, first["id"]))["unique_key"] == "once"


# --- one job ---------------------------------------------------------------------------------


async def test_unknown_job_is_not_found(client: httpx.AsyncClient) -> None:
    job_id = uuid.uuid4()

    problem = assert_problem(await client.get(f"/api/jobs/{job_id}"), 404)

    assert problem["type"].endswith("job-not-found") and str(job_id) in problem["detail"]


async def test_malformed_job_id_is_refused(client: httpx.AsyncClient) -> None:
    for request in (
        client.get("/api/jobs/42"),
        client.delete("/api/jobs/not-a-uuid"),
        client.post("/api/jobs/x/requeue"),
    ):
        problem = assert_problem(await request, 422)
        assert problem["errors"][0]["loc"] == ["path", "job_id"]


async def test_deleted_job_stays_deleted_and_deleting_again_does_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)

    first = await client.delete(f"/api/jobs/{created['id']}")
    second = await client.delete(f"/api/jobs/{created['id']}")

    assert first.status_code == second.status_code == 204 and first.content == b""
    assert (await get_job(client, created["id"]))["state"] == "deleted"
    assert_problem(await client.delete(f"/api/jobs/{uuid.uuid4()}"), 404)


async def test_requeued_job_is_enqueued_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await enqueue(client, "TempFileJobs.cleanup", args=[-1])
    await wait_for_state(app, JobId(uuid.UUID(created["id"])), JobState.FAILED)

    response = await client.post(f"/api/jobs/{created['id']}/requeue")

    assert response.status_code == 204
    job = await get_job(client, created["id"])
    assert [step["state"] for step in job["history"]][:4] == [
        "enqueued",
        "processing",
        "failed",
        "enqueued",
    ]
    # (and it runs again: wait for that, so the test ends with the worker idle)
    async with asyncio.timeout(WAIT_SECONDS):
        while job["state"] != "failed" or job["attempt"] < 2:
            await asyncio.sleep(0.02)
            job = await get_job(client, created["id"])
    assert_problem(await client.post(f"/api/jobs/{uuid.uuid4()}/requeue"), 404)


async def test_processing_job_cannot_be_requeued(idle_app: FastAPI) -> None:
    # Given a job a worker has claimed
    async with client_of(idle_app) as client:
        created = await enqueue(client, "HeartbeatJobs.beat", queue="probe")
        container = container_of(idle_app)
        claims = await engine_of(container).store.acquire(
            ["probe"],
            now=container.clock().now(),
            lease=dt.timedelta(minutes=5),
            limit=1,
            server_id="test-worker",
        )
        assert len(claims) == 1

        # When it is requeued, Then the API refuses: it is running
        response = await client.post(f"/api/jobs/{created['id']}/requeue")

    assert assert_problem(response, 409)["type"].endswith("invalid-transition")


# --- lists -----------------------------------------------------------------------------------


async def list_jobs(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/jobs", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_pages_cover_every_job_once_in_order(client: httpx.AsyncClient) -> None:
    created = [
        (await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR))["id"] for _ in range(5)
    ]

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = await list_jobs(
            client, limit=2, sort="created_at", **({"cursor": cursor} if cursor else {})
        )
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == created
    newest_first = await list_jobs(client, limit=500)
    assert [item["id"] for item in newest_first["items"]] == created[::-1]
    assert newest_first["next_cursor"] is None


async def test_filters_narrow_the_list(app: FastAPI, client: httpx.AsyncClient) -> None:
    # Given jobs of different handlers, queues, arguments and states
    beat = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)
    cleanup = await enqueue(client, "TempFileJobs.cleanup", args=[12.5], delay_seconds=HOUR)
    other_queue = await enqueue(client, "HeartbeatJobs.beat", queue="probe", delay_seconds=HOUR)
    failed = await enqueue(client, "TempFileJobs.cleanup", args=[-7.25])
    await wait_for_state(app, JobId(uuid.UUID(failed["id"])), JobState.FAILED)

    async def ids(**params: Any) -> set[str]:
        return {item["id"] for item in (await list_jobs(client, **params))["items"]}

    # Then each filter keeps only the jobs that match it
    assert await ids(handler="HeartbeatJobs.beat") == {beat["id"], other_queue["id"]}
    assert await ids(queue="probe") == {other_queue["id"]}
    assert await ids(text="12.5") == {cleanup["id"]}
    assert await ids(state="failed") == {failed["id"]}
    assert await ids(state=["failed", "scheduled"], handler="TempFileJobs.cleanup") == {
        cleanup["id"],
        failed["id"],
    }
    assert await ids(created_to="2000-01-01T00:00:00Z") == set()
    assert len(await ids(created_from="2000-01-01T00:00:00+05:00")) == 4
    assert await ids(recurring_id="nothing-made-this") == set()


async def test_list_refuses_what_it_cannot_sort_or_page(client: httpx.AsyncClient) -> None:
    for params in (
        {"sort": "payload"},
        {"sort": "created_at; DROP TABLE jobs"},
        {"limit": 0},
        {"limit": 501},
        {"state": "running"},
        {"created_from": "yesterday"},
        {"created_from": "2020-01-01T00:00:00"},
    ):
        assert_problem(await client.get("/api/jobs", params=params), 422)

    problem = assert_problem(await client.get("/api/jobs", params={"cursor": "garbage"}), 422)
    assert problem["type"].endswith("invalid-query")


async def test_cursor_of_another_sort_order_is_refused(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)
    cursor = (await list_jobs(client, limit=1))["next_cursor"]

    response = await client.get("/api/jobs", params={"cursor": cursor, "sort": "state_at"})

    assert_problem(response, 422)


async def test_cursor_at_the_edge_of_the_calendar_is_refused(client: httpx.AsyncClient) -> None:
    job_id = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    for sort, at in [
        ("-created_at", "0001-01-01T00:00:00+14:00"),
        ("-created_at", "9999-12-31T23:59:59-14:00"),
        ("created_at", "0001-01-01T00:00:00+00:00"),
    ]:
        raw = json.dumps([sort, at, job_id]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        params = {"cursor": cursor, "sort": sort}

        problem = assert_problem(await client.get("/api/jobs", params=params), 422)
        assert problem["type"].endswith("invalid-query")


# --- bulk actions ----------------------------------------------------------------------------


async def test_bulk_delete_and_requeue_act_on_matching_jobs_only(
    client: httpx.AsyncClient,
) -> None:
    # Given three jobs of one handler and one of another
    doomed = {
        (await enqueue(client, "TempFileJobs.cleanup", args=[i], delay_seconds=HOUR))["id"]
        for i in range(3)
    }
    spared = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)

    # When the first handler's jobs are deleted in bulk
    deleted = await client.post("/api/jobs/bulk-delete", json={"handler": "TempFileJobs.cleanup"})

    # Then only they are, and a bulk requeue brings them back
    assert deleted.status_code == 200
    assert deleted.json() == {"matched": 3, "changed": 3, "skipped": 0, "skipped_jobs": []}
    in_deleted = await list_jobs(client, state="deleted")
    assert {item["id"] for item in in_deleted["items"]} == doomed
    assert (await get_job(client, spared["id"]))["state"] == "scheduled"

    requeued = await client.post("/api/jobs/bulk-requeue", json={"states": ["deleted"]})

    assert requeued.json() == {"matched": 3, "changed": 3, "skipped": 0, "skipped_jobs": []}
    assert (await list_jobs(client, state="deleted"))["items"] == []


async def test_bulk_action_needs_at_least_one_criterion(client: httpx.AsyncClient) -> None:
    await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)

    bodies: list[dict[str, Any]] = [{}, {"states": []}, {"queue": None}]
    for body in bodies:
        for action in ("bulk-delete", "bulk-requeue"):
            assert_problem(await client.post(f"/api/jobs/{action}", json=body), 422)
    assert_problem(await client.post("/api/jobs/bulk-delete", json={"colour": "red"}), 422)

    assert len((await list_jobs(client, state="scheduled"))["items"]) == 1


async def test_requeue_of_a_job_whose_unique_key_is_held_is_a_conflict_naming_the_holder(
    idle_app: FastAPI,
) -> None:
    async with client_of(idle_app) as client:
        first = await enqueue(client, "HeartbeatJobs.beat", unique_key="k:1", delay_seconds=HOUR)
        assert (await client.delete(f"/api/jobs/{first['id']}")).status_code == 204
        holder = await enqueue(client, "HeartbeatJobs.beat", unique_key="k:1", delay_seconds=HOUR)

        single = await client.post(f"/api/jobs/{first['id']}/requeue")
        bulk = await client.post("/api/jobs/bulk-requeue", json={"states": ["deleted"]})

    problem = assert_problem(single, 409)
    assert problem["type"].endswith("unique-key-held")
    assert holder["id"] in problem["detail"]
    assert bulk.status_code == 200, bulk.text
    assert bulk.json() == {
        "matched": 1,
        "changed": 0,
        "skipped": 1,
        "skipped_jobs": [{"id": first["id"], "state": "deleted", "reason": problem["detail"]}],
    }


async def test_job_view_flags_a_queue_no_live_server_serves(client: httpx.AsyncClient) -> None:
    served = await enqueue(client, "HeartbeatJobs.beat", delay_seconds=HOUR)
    unserved = await enqueue(client, "HeartbeatJobs.beat", queue="nobody", delay_seconds=HOUR)

    assert (await get_job(client, served["id"]))["queue_unserved"] is False
    assert (await get_job(client, unserved["id"]))["queue_unserved"] is True
