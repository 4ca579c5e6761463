"""R14: 200 hostile strings through every string parameter of the REST API, on each database.

The API (no worker: jobs stay as seeded) holds jobs whose arguments are wildcard-like or
non-ASCII text, in two queues, and one recurring job. Each string of the corpus
(`hostile_strings`) goes, percent-encoded as raw UTF-8 (lone surrogates as their invalid
bytes), into every string filter, the sort and the cursor of `GET /api/jobs`, the cursor of
`GET /api/recurring`, every path parameter, and the string criteria of the bulk actions (with
`states=["processing"]`, which no job is in). Then:

- no answer is a 5xx;
- no list is broader than the literal match: a `text` result only holds jobs whose stored
  arguments contain the string (as the arguments' JSON writes it), a `queue`, `handler` or
  `recurring_id` result only jobs with exactly that value; a bulk action matches nothing;
  sort and state accept only their allow-lists;
- every table has as many rows as before, and the full job list is unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

from application.jobs import JobSort, JobState
from infrastructure.jobs.engine.model import as_in_arguments_json
from tests.api.conftest import client_of, running, settings_for
from tests.reliability.common import JOBS
from tests.reliability.conftest import Database, Figures
from tests.reliability.hostile_strings import CORPUS_SIZE, hostile_corpus

HOUR = 3600
JSON = {"Content-Type": "application/json"}
SEEDED_MESSAGES = [
    "abc",
    "a_c",
    "a%c",
    "a\\c",
    "O'Brien",
    "Stra\u00dfe",
    "caf\u00e9",
    "cafe\u0301",
    "100% off_now",
    "\u0645\u0631\u062d\u0628\u0627",
    "\U0001f600 smile",
    '{"nested": "json"}',
]
RECURRING_ID = "nightly-report"
EXACT_FILTERS = ("queue", "handler", "recurring_id")
ALLOWED = {"sort": {s.value for s in JobSort}, "state": {s.value for s in JobState}}
PATHS = [
    ("GET", "/api/jobs/{}"),
    ("GET", "/api/jobs/{}/explanation"),
    ("DELETE", "/api/jobs/{}"),
    ("POST", "/api/jobs/{}/requeue"),
    ("GET", "/api/batches/{}"),
    ("GET", "/api/recurring/{}"),
    ("DELETE", "/api/recurring/{}"),
    ("POST", "/api/recurring/{}/trigger"),
    ("POST", "/api/recurring/{}/pause"),
    ("POST", "/api/recurring/{}/resume"),
]


def encoded(text: str) -> str:
    """`text` percent-encoded as UTF-8 bytes; a lone surrogate as its (invalid) bytes."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.mark.timeout(240)
async def test_hostile_strings_never_widen_a_result_nor_break_the_api(
    database: Database, figures: Figures, tmp_path: Path
) -> None:
    async with running(settings_for(database.url, tmp_path), roles=frozenset()) as app:
        async with client_of(app) as client:
            await _seed(client)
            payloads = _payloads(database.engine)
            rows_before = _row_counts(database.engine)
            listing_before = await _all_jobs(client)
            statuses: Counter[int] = Counter()
            broader: list[tuple[str, str]] = []
            for text in hostile_corpus():
                broader += await _probe(client, text, payloads, statuses)
            listing_after = await _all_jobs(client)
    rows_after = _row_counts(database.engine)

    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    figures.add("strings", CORPUS_SIZE)
    figures.add("requests", sum(statuses.values()))
    for status, n in sorted(statuses.items()):
        figures.add(f"status_{status}", n)
    figures.add("server_errors", server_errors)
    figures.add("broader_results", len(broader))

    assert server_errors == 0, statuses
    assert broader == []
    assert rows_after == rows_before
    assert listing_after == listing_before


async def _seed(client: httpx.AsyncClient) -> None:
    for message in SEEDED_MESSAGES:
        kwargs = {"user_id": str(uuid.uuid4()), "message": message}
        body = {"handler": "NotificationJobs.notify", "kwargs": kwargs, "delay_seconds": HOUR}
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
    body = {"handler": "TempFileJobs.cleanup", "args": [12.5], "delay_seconds": HOUR}
    assert (await client.post("/api/jobs", json=body)).status_code == 201
    recurring = {"cron": "0 3 * * *", "handler": "HeartbeatJobs.beat"}
    response = await client.put(f"/api/recurring/{RECURRING_ID}", json=recurring)
    assert response.status_code == 200, response.text
    response = await client.post(f"/api/recurring/{RECURRING_ID}/trigger")
    assert response.status_code == 201, response.text


async def _probe(
    client: httpx.AsyncClient, text: str, payloads: dict[str, str], statuses: Counter[int]
) -> list[tuple[str, str]]:
    """Send `text` everywhere; count the statuses; the (parameter, text) of broader results."""
    broader = []
    value = encoded(text)
    for name in ("text", *EXACT_FILTERS):
        response = await client.get(f"/api/jobs?{name}={value}&limit=500")
        statuses[response.status_code] += 1
        if response.status_code == 200 and not _literal(name, text, response.json(), payloads):
            broader.append((name, text))
    for name, allowed in ALLOWED.items():
        response = await client.get(f"/api/jobs?{name}={value}")
        statuses[response.status_code] += 1
        if response.status_code < 500 and (response.status_code == 200) != (text in allowed):
            broader.append((name, text))
    for path in ("/api/jobs", "/api/recurring"):
        response = await client.get(f"{path}?cursor={value}")
        statuses[response.status_code] += 1
    for method, template in PATHS:
        response = await client.request(method, template.format(value))
        statuses[response.status_code] += 1
        if response.status_code < 300 and text != RECURRING_ID:
            broader.append((f"{method} {template}", text))
    for name in ("text", *EXACT_FILTERS):
        for action in ("bulk-delete", "bulk-requeue"):
            # ASCII JSON: a lone surrogate travels as its `\\uXXXX` escape
            body = json.dumps({"states": ["processing"], name: text})
            response = await client.post(f"/api/jobs/{action}", content=body, headers=JSON)
            statuses[response.status_code] += 1
            if response.status_code == 200 and response.json()["matched"] != 0:
                broader.append((f"{action} {name}", text))
    return broader


def _literal(name: str, text: str, page: dict[str, Any], payloads: dict[str, str]) -> bool:
    """Whether every listed job matches `text` literally by the filter `name`."""
    items = page["items"]
    if name == "text":  # as the store writes it in the arguments' JSON
        stored = as_in_arguments_json(text)
        return all(stored in payloads[item["id"]] for item in items)
    return all(item[name] == text for item in items)


def _payloads(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(JOBS.c.id, JOBS.c.payload)).all()
    return {str(uuid.UUID(str(job_id))): payload for job_id, payload in rows}


def _row_counts(engine: sa.Engine) -> dict[str, int]:
    names = sa.inspect(engine).get_table_names()
    with engine.connect() as connection:
        return {
            name: int(
                connection.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0
            )
            for name in names
        }


async def _all_jobs(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/jobs?limit=500&sort=created_at")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
