"""Every error is an RFC 9457 problem, and the OpenAPI document says so."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from host.api import business
from host.api.deps import job_service
from host.api.problems import TYPE_PREFIX
from host.settings import Scope
from tests.api.conftest import (
    KEYS,
    MAX_BODY_BYTES,
    REMOTE,
    client_of,
    running,
    settings_for,
)
from tests.api.requests import assert_problem
from tests.api.test_auth import routes_of

PROBLEM = "application/problem+json"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async with running(settings_for(None, tmp_path)) as app:
        yield app


@pytest.fixture
async def openapi(app: FastAPI) -> dict[str, Any]:
    async with client_of(app, KEYS[Scope.READ]) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_api_operation_documents_its_errors_as_problems(
    app: FastAPI, openapi: dict[str, Any]
) -> None:
    prefixes = ("/api/", f"{business.PREFIX}/")
    api = [op for op in operations(openapi) if op[1].startswith(prefixes)]
    served = {(method, path) for method, path in routes_of(app) if path.startswith(prefixes)}
    assert {(method, path) for method, path, _ in api} == served  # every route is documented
    assert any(path.startswith(business.PREFIX) for _, path in served)

    for method, path, operation in api:
        responses = operation["responses"]
        assert {"401", "403"} <= responses.keys(), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM], (method, path, status)
                schema = response["content"][PROBLEM]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
        assert operation["description"], (method, path)
        assert {"APIKeyHeader", "HTTPBearer"} <= {
            name for requirement in operation["security"] for name in requirement
        }

    problem = openapi["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "argument", "errors"} <= set(
        problem["properties"]
    )
    assert "ValidationIssue" in openapi["components"]["schemas"]


def test_request_bodies_carry_examples(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for name in ("EnqueueRequest", "JobFilterBody", "RecurringRequest"):
        assert schemas[name]["examples"], name
    for _, path, operation in operations(openapi):
        if path.startswith(business.PREFIX) and "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert schemas[ref.rsplit("/", 1)[-1]]["examples"], path  # the auth matrix sends it


async def test_unknown_path_and_wrong_method_are_problems(app: FastAPI) -> None:
    async with client_of(app) as client:
        missing = await client.get("/api/nothing-here")
        wrong = await client.patch("/api/jobs")

    assert assert_problem(missing, 404)["type"] == f"{TYPE_PREFIX}not-found"
    assert assert_problem(wrong, 405)["type"] == f"{TYPE_PREFIX}method-not-allowed"
    assert wrong.headers["allow"]


async def test_malformed_json_is_a_400_problem_of_our_type_naming_the_body(app: FastAPI) -> None:
    async with client_of(app) as client:
        response = await client.post(
            "/api/jobs", content=b'{"handler": ', headers={"content-type": "application/json"}
        )

    problem = assert_problem(response, 400)
    assert problem["type"] == f"{TYPE_PREFIX}malformed-body"
    assert problem["errors"][0]["loc"][0] == "body"


async def test_a_body_nested_too_deeply_to_parse_is_a_400_problem_of_our_type(
    app: FastAPI,
) -> None:
    deep = b'{"handler": "Recorder.record", "args": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    async with client_of(app) as client:
        response = await client.post(
            "/api/jobs", content=deep, headers={"content-type": "application/json"}
        )

    assert assert_problem(response, 400)["type"] == f"{TYPE_PREFIX}malformed-body"


async def test_an_oversize_body_is_a_413_problem_of_our_type(app: FastAPI) -> None:
    async with client_of(app) as client:
        response = await client.post(
            "/api/jobs",
            content=b'{"args": ["' + b"x" * (MAX_BODY_BYTES + 1) + b'"]}',
            headers={"content-type": "application/json"},
        )

    assert assert_problem(response, 413)["type"] == f"{TYPE_PREFIX}body-too-large"


async def test_no_problem_is_about_blank(app: FastAPI) -> None:
    async with client_of(app, None) as client:
        unauthenticated = await client.get("/api/jobs")

    assert assert_problem(unauthenticated, 401)["type"] == f"{TYPE_PREFIX}unauthenticated"


class BrokenJobService:
    async def get(self, job_id: Any) -> Any:
        raise RuntimeError("connection to db:5432 failed, password=hunter2")


async def test_unexpected_error_is_logged_and_answered_without_details(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    app.dependency_overrides[job_service] = BrokenJobService
    transport = httpx.ASGITransport(app=app, client=REMOTE, raise_app_exceptions=False)
    headers = {"X-API-Key": KEYS[Scope.READ]}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        response = await c.get(f"/api/jobs/{uuid.uuid4()}")

    problem = assert_problem(response, 500)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert problem["title"] == "Internal Server Error"
    assert problem["type"] == f"{TYPE_PREFIX}internal-error"
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "request_failed"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
