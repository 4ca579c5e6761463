"""Recurring jobs through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.api.requests import assert_problem, get_job

NIGHTLY = {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "handler": "HeartbeatJobs.beat"}


async def put(client: httpx.AsyncClient, recurring_id: str, **body: Any) -> dict[str, Any]:
    response = await client.put(f"/api/recurring/{recurring_id}", json=body)
    assert response.status_code == 200, response.text
    recurring: dict[str, Any] = response.json()
    return recurring


def fire_times(recurring: dict[str, Any]) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(at) for at in recurring["next_fire_times"]]


async def test_defined_recurring_job_shows_its_next_five_fire_times(
    client: httpx.AsyncClient,
) -> None:
    defined = await put(client, "nightly", **NIGHTLY, misfire={"kind": "skip"})

    shown = (await client.get("/api/recurring/nightly")).json()
    listed = {r["id"]: r for r in (await client.get("/api/recurring")).json()["items"]}

    assert shown == listed["nightly"] == defined
    assert shown["misfire"] == {"kind": "skip", "limit": 100, "grace_seconds": 60.0}
    times = fire_times(shown)
    assert len(times) == 5 and times == sorted(set(times))
    berlin = [at.astimezone(ZoneInfo("Europe/Berlin")) for at in times]
    assert all((at.hour, at.minute) == (3, 0) for at in berlin)
    assert dt.datetime.fromisoformat(shown["next_run_at"]) == times[0]
    assert shown["paused"] is False and shown["queue"] == "low"


async def test_putting_again_replaces_the_definition(client: httpx.AsyncClient) -> None:
    await put(client, "nightly", **NIGHTLY)

    replaced = await put(
        client,
        "nightly",
        cron="*/10 * * * *",
        handler="TempFileJobs.cleanup",
        kwargs={"older_than_hours": 2.5},
        queue="default",
    )

    assert replaced["cron"] == "*/10 * * * *" and replaced["timezone"] == "UTC"
    assert replaced["handler"] == "TempFileJobs.cleanup" and replaced["queue"] == "default"
    assert all(at.minute % 10 == 0 for at in fire_times(replaced))


async def test_a_windows_time_zone_id_is_stored_and_shown_as_its_iana_name(
    client: httpx.AsyncClient,
) -> None:
    body = {**NIGHTLY, "timezone": "Turkey Standard Time"}

    put = await client.put("/api/recurring/nightly", json=body)
    got = await client.get("/api/recurring/nightly")

    assert put.status_code < 300, put.text
    assert got.json()["timezone"] == "Europe/Istanbul"


async def test_invalid_definitions_are_refused(client: httpx.AsyncClient) -> None:
    invalid = [
        ({**NIGHTLY, "cron": "61 * * * *"}, "invalid-schedule"),
        ({**NIGHTLY, "cron": "* * * *"}, "invalid-schedule"),
        ({**NIGHTLY, "cron": "0 0 30 2 *"}, "invalid-schedule"),  # never fires
        ({**NIGHTLY, "cron": "H 3 * * *"}, "invalid-schedule"),  # Jenkins-style hash
        ({**NIGHTLY, "cron": "0 R * * *"}, "invalid-schedule"),
        ({**NIGHTLY, "timezone": "Mars/Olympus"}, "invalid-request"),
        ({**NIGHTLY, "timezone": "America"}, "invalid-request"),
        ({**NIGHTLY, "handler": "Nope.nothing"}, "handler-not-registered"),
        ({**NIGHTLY, "args": [1]}, "invalid-arguments"),
        ({**NIGHTLY, "misfire": {"kind": "run_all", "limit": 0}}, "invalid-request"),
        ({"cron": "0 3 * * *"}, "invalid-request"),
    ]
    for body, kind in invalid:
        response = await client.put("/api/recurring/nightly", json=body)
        assert assert_problem(response, 422)["type"].endswith(kind), body

    assert_problem(await client.put(f"/api/recurring/{'x' * 201}", json=NIGHTLY), 422)
    assert_problem(await client.get("/api/recurring/nightly"), 404)


async def test_trigger_creates_a_job_of_the_recurring_job_now(client: httpx.AsyncClient) -> None:
    await put(client, "nightly", **NIGHTLY)

    response = await client.post("/api/recurring/nightly/trigger")

    assert response.status_code == 201
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/api/jobs/{job_id}"
    job = await get_job(client, job_id)
    assert job["recurring_id"] == "nightly" and job["handler"] == "HeartbeatJobs.beat"


async def test_paused_recurring_job_has_no_fire_times_until_resumed(
    client: httpx.AsyncClient,
) -> None:
    await put(client, "nightly", **NIGHTLY)

    paused = await client.post("/api/recurring/nightly/pause")
    while_paused = (await client.get("/api/recurring/nightly")).json()
    resumed = await client.post("/api/recurring/nightly/resume")
    after = (await client.get("/api/recurring/nightly")).json()

    assert paused.status_code == resumed.status_code == 204
    assert while_paused["paused"] is True and while_paused["next_fire_times"] == []
    assert after["paused"] is False and len(after["next_fire_times"]) == 5


async def test_removed_recurring_job_is_gone(client: httpx.AsyncClient) -> None:
    await put(client, "nightly", **NIGHTLY)

    response = await client.delete("/api/recurring/nightly")

    assert response.status_code == 204
    assert_problem(await client.get("/api/recurring/nightly"), 404)
    assert "nightly" not in {r["id"] for r in (await client.get("/api/recurring")).json()["items"]}


async def test_unknown_recurring_job_is_not_found_by_any_action(
    client: httpx.AsyncClient,
) -> None:
    for response in (
        await client.get("/api/recurring/ghost"),
        await client.delete("/api/recurring/ghost"),
        await client.post("/api/recurring/ghost/trigger"),
        await client.post("/api/recurring/ghost/pause"),
        await client.post("/api/recurring/ghost/resume"),
    ):
        assert assert_problem(response, 404)["type"].endswith("recurring-job-not-found")


async def test_the_list_comes_in_pages_by_id(client: httpx.AsyncClient) -> None:
    for recurring_id in ("r3", "r1", "r5", "r2", "r4"):
        await put(client, recurring_id, **NIGHTLY)

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/recurring", params=params)).json()
        pages.append([item["id"] for item in page["items"]])
        if (cursor := page["next_cursor"]) is None:
            break

    listed = [recurring_id for page in pages for recurring_id in page]
    assert listed == sorted(set(listed))  # the service's own recurring jobs are listed too
    assert {"r1", "r2", "r3", "r4", "r5"} <= set(listed)
    assert len(pages) >= 3 and all(len(page) == 2 for page in pages[:-1])
    assert (await client.get("/api/recurring", params={"limit": 501})).status_code == 422


async def test_host_dependent_time_zones_are_refused(client: httpx.AsyncClient) -> None:
    for zone in ("localtime", "Factory", "posixrules"):
        response = await client.put("/api/recurring/local", json={**NIGHTLY, "timezone": zone})

        assert_problem(response, 422)


async def test_hostile_list_cursors_are_no_server_error(client: httpx.AsyncClient) -> None:
    for cursor in ("'; DROP TABLE jobs; --", "%", "é" * 200, "\U0001f642", "a\0b", "x" * 201):
        response = await client.get("/api/recurring", params={"cursor": cursor})

        refused = "\0" in cursor or len(cursor) > 200
        assert response.status_code == (422 if refused else 200), cursor
