"""Oversize and abusive requests (R15): refused with 4xx problems, never a 500."""

from __future__ import annotations

import json
import resource
from collections.abc import AsyncIterator

import httpx

from tests.api.conftest import MAX_BODY_BYTES, PAYLOAD_LIMIT_BYTES
from tests.api.requests import assert_problem

JSON = {"content-type": "application/json"}
MB = 1024 * 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def job_body(size: int) -> bytes:
    """An enqueue request of exactly `size` bytes."""
    head = b'{"handler": "HeartbeatJobs.beat", "queue": "'
    tail = b'"}'
    return head + b"q" * (size - len(head) - len(tail)) + tail


async def test_body_one_byte_over_the_limit_is_refused_with_413(
    client: httpx.AsyncClient,
) -> None:
    at_limit = await client.post("/api/jobs", content=job_body(MAX_BODY_BYTES), headers=JSON)
    over = await client.post("/api/jobs", content=job_body(MAX_BODY_BYTES + 1), headers=JSON)

    assert at_limit.status_code == 422  # read and validated: the queue name is too long
    assert "over the limit" in assert_problem(over, 413)["detail"]


async def test_streamed_body_over_the_limit_is_refused_with_413(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = job_body(MAX_BODY_BYTES + 1)
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    # No Content-Length: the limit applies to the bytes as they arrive
    response = await client.post("/api/jobs", content=chunks(), headers=JSON)

    assert_problem(response, 413)


async def test_deeply_nested_json_is_refused_with_4xx(client: httpx.AsyncClient) -> None:
    for depth in (10_000, 1_000, 300, 100):
        args = "[" * depth + "]" * depth
        body = f'{{"handler": "HeartbeatJobs.beat", "args": [{args}]}}'.encode()

        response = await client.post("/api/jobs", content=body, headers=JSON)

        assert response.status_code in (400, 413, 422), (depth, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_huge_array_and_string_arguments_are_refused(client: httpx.AsyncClient) -> None:
    before = peak_rss_mb()
    array = {"handler": "HeartbeatJobs.beat", "args": [0] * 100_000}
    string = {"handler": "NotificationJobs.notify", "args": ["0" * 36, "x" * (10 * MB)]}

    many = await client.post("/api/jobs", content=json.dumps(array), headers=JSON)
    long = await client.post("/api/jobs", content=json.dumps(string), headers=JSON)

    assert many.status_code in (413, 422) and many.headers["content-type"].endswith("+json")
    assert_problem(long, 413)
    assert peak_rss_mb() - before < 50


async def test_argument_over_the_payload_limit_is_refused_naming_it(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "handler": "NotificationJobs.notify",
        "args": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427"],
        "kwargs": {"message": "x" * (PAYLOAD_LIMIT_BYTES + 1)},
    }
    assert len(json.dumps(body)) < MAX_BODY_BYTES

    response = await client.post("/api/jobs", json=body)

    problem = assert_problem(response, 413)
    assert problem["argument"] == "message"
    assert problem["type"].endswith("payload-too-large")


async def test_a_thousand_query_parameters_are_no_server_error(
    client: httpx.AsyncClient,
) -> None:
    Params = list[tuple[str, str | int | float | bool | None]]
    unknown: Params = [(f"p{i}", str(i)) for i in range(1000)]
    states: Params = [("state", "failed")] * 1000
    bad: Params = [("limit", "x")] * 1000

    for params in (unknown, states, bad):
        response = await client.get("/api/jobs", params=params)
        assert response.status_code in (200, 400, 414, 422), response.text[:200]


async def test_unstorable_json_arguments_are_refused_naming_them(
    client: httpx.AsyncClient,
) -> None:
    nul = {"handler": "NotificationJobs.notify", "args": ["0" * 36], "kwargs": {"message": "a\0"}}
    infinite = b'{"handler": "TempFileJobs.cleanup", "args": [Infinity]}'
    surrogate = b'{"handler": "NotificationJobs.notify", "kwargs": {"message": "\\ud800"}}'

    named_nul = await client.post("/api/jobs", json=nul)
    named_inf = await client.post("/api/jobs", content=infinite, headers=JSON)
    named_surrogate = await client.post("/api/jobs", content=surrogate, headers=JSON)

    assert assert_problem(named_nul, 422)["argument"] == "message"
    assert assert_problem(named_inf, 422)["argument"] == "args[0]"
    assert assert_problem(named_surrogate, 422)["argument"] == "message"


async def test_a_lone_surrogate_in_an_argument_name_is_named_escaped(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"handler": "NotificationJobs.notify", "kwargs": {"\\ud800": 1}}'

    response = await client.post("/api/jobs", content=body, headers=JSON)

    assert assert_problem(response, 422)["argument"] == "\\ud800"


async def test_strings_the_database_cannot_store_are_refused(client: httpx.AsyncClient) -> None:
    for body in (
        {"handler": "HeartbeatJobs.beat", "queue": "a\0b"},
        {"handler": "HeartbeatJobs.beat", "unique_key": "k" * 201},
        {"handler": "HeartbeatJobs.beat", "queue": "q" * 101},
    ):
        assert_problem(await client.post("/api/jobs", json=body), 422)
    for params in ({"text": "a\0"}, {"queue": "\0"}, {"handler": "h" * 201}):
        assert_problem(await client.get("/api/jobs", params=params), 422)
    assert_problem(await client.get("/api/recurring/a%00b"), 422)
    surrogate_key = b'{"handler": "HeartbeatJobs.beat", "unique_key": "\\udc00"}'
    assert_problem(await client.post("/api/jobs", content=surrogate_key, headers=JSON), 422)
