"""Errors as RFC 9457 problem details (`application/problem+json`), for every route.

One place maps the job port's errors and the domain's (which carry their status and type)
to HTTP statuses; HTTP errors (auth, routing, the body limit), validation errors and
unexpected exceptions get the same shape. Every problem has a `type` of ours (never
`about:blank`), so a client can tell the kinds apart by it alone.
"""

from __future__ import annotations

import http
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from application.jobs import (
    BatchNotFound,
    HandlerNotRegistered,
    IdempotencyKeyReused,
    InvalidArguments,
    InvalidQuery,
    InvalidSchedule,
    InvalidTransition,
    JobNotFound,
    JobsError,
    PayloadTooLarge,
    RecurringJobNotFound,
    UniqueKeyHeld,
)
from domain.errors import DomainError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:jobs-service:problem:"
MAX_REPORTED_ERRORS = 20
MAX_LOCATION_PARTS = 8

_JOBS_ERRORS: dict[type[JobsError], tuple[int, str]] = {
    JobNotFound: (404, "job-not-found"),
    RecurringJobNotFound: (404, "recurring-job-not-found"),
    BatchNotFound: (404, "batch-not-found"),
    HandlerNotRegistered: (422, "handler-not-registered"),
    InvalidArguments: (422, "invalid-arguments"),
    PayloadTooLarge: (413, "payload-too-large"),
    InvalidSchedule: (422, "invalid-schedule"),
    IdempotencyKeyReused: (422, "idempotency-key-reused"),
    InvalidQuery: (422, "invalid-query"),
    UniqueKeyHeld: (409, "unique-key-held"),
    InvalidTransition: (409, "invalid-transition"),
}

_STATUS_KINDS = {
    400: "malformed-body",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    500: "internal-error",
}
"""The problem type of an HTTP error that no more specific kind explains."""

_DESCRIPTIONS = {
    400: "The request body cannot be parsed (not JSON, or nested too deeply)",
    401: "No credentials, or credentials that are not valid",
    403: "The credentials do not grant the scope this needs",
    404: "Not found",
    409: "The job's state does not allow this",
    413: "The request body or the job's arguments are too large",
    422: "The request is not valid",
}


class ValidationIssue(BaseModel):
    """One reason a request is not valid."""

    loc: list[str | int] = Field(description="Where: `body`, `query` or `path`, then the field.")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for people and programs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": f"{TYPE_PREFIX}job-not-found",
                    "title": "Job not found",
                    "status": 404,
                    "detail": "no job has the id 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                    "instance": "/api/jobs/0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                }
            ]
        }
    )

    type: str = Field("about:blank", description="Identifies the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(None, description="What went wrong this time.")
    instance: str | None = Field(None, description="The path of the request.")
    argument: str | None = Field(None, description="The job argument at fault, if one is.")
    errors: list[ValidationIssue] | None = Field(None, description="Each invalid field.")


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; `kind` names its problem type, else the status does."""
    problem = Problem(
        type=f"{TYPE_PREFIX}{kind or _status_kind(status)}",
        title=kind.replace("-", " ").capitalize() if kind else _phrase(status),
        status=status,
        detail=detail,
        instance=request.url.path,
        **extensions,
    )
    return JSONResponse(
        _printable(problem.model_dump(mode="json", exclude_none=True)),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: its error statuses, and 401/403 of every route."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, _phrase(status)),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in sorted({401, 403, *statuses})
    }


def install(app: FastAPI) -> None:
    """Answer every error of `app` with a problem, and publish the Problem schema."""
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(JobsError, _jobs_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def add_problem_schema(openapi: dict[str, Any]) -> None:
    """Put `Problem` (and what it uses) in the components the routes' error responses name."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == _phrase(exc.status_code):
        detail = None
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, exc.status_code, detail=detail, headers=headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    issues = [_issue(error) for error in exc.errors()[:MAX_REPORTED_ERRORS]]
    first = issues[0] if issues else None
    detail = f"{'.'.join(map(str, first.loc))}: {first.msg}" if first else None
    if first is not None and first.type == "json_invalid":  # not JSON at all: nothing to validate
        return problem_response(request, 400, detail=detail, kind="malformed-body", errors=issues)
    return problem_response(request, 422, detail=detail, kind="invalid-request", errors=issues)


def _issue(error: Any) -> ValidationIssue:
    # Only where, what and why: the input itself could be huge or sensitive.
    location = [part for part in error.get("loc", ()) if isinstance(part, str | int)]
    return ValidationIssue(
        loc=location[:MAX_LOCATION_PARTS], msg=str(error.get("msg", "")), type=str(error["type"])
    )


async def _jobs_error(request: Request, exc: JobsError) -> JSONResponse:
    status, kind = next(
        (_JOBS_ERRORS[cls] for cls in type(exc).__mro__ if cls in _JOBS_ERRORS),
        (400, "jobs-error"),
    )
    argument = getattr(exc, "argument", None)
    return problem_response(request, status, detail=str(exc), kind=kind, argument=argument)


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    """Every domain error says its own status and type: routes never catch them."""
    return problem_response(request, exc.status, detail=str(exc), kind=exc.type)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error(
        "unexpected error in %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"action": "request_failed"},
    )
    return problem_response(request, 500, detail="an unexpected error occurred; it is logged")


def _printable(value: Any) -> Any:
    """`value` with lone surrogates (valid in JSON input, not encodable in UTF-8) written as
    escapes: a problem may quote the caller's input, such as an argument's name."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    return value


def _status_kind(status: int) -> str:
    return _STATUS_KINDS.get(status) or _phrase(status).lower().replace(" ", "-")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
