"""The service log: stdlib records rendered by structlog, with request, job and trace context.

Lines are captured from the stream `configure_logging` writes to, so the formatter is part
of what is tested (caplog would bypass it)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry import trace

from application.jobs import RetryPolicy
from host.logging import configure_logging
from host.request_context import RequestContextMiddleware
from tests.contract.handlers import HOSTILE_STORED, Contextual, Hostile, Journal
from tests.observability.conftest import Engine

logger = logging.getLogger("tests.observability")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def with_event(self, event: str) -> dict[str, Any]:
        [line] = [line for line in self.lines() if line["event"] == event]
        return line


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Logging configured as JSON into a buffer; the previous configuration restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    captured = Captured()
    configure_logging("INFO", "json", stream=captured.stream)
    yield captured
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def logging_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        logger.info("saying hello", extra={"action": "said_hello"})
        return {"hello": "world"}

    app.add_middleware(RequestContextMiddleware)
    return app


async def get_hello(headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=logging_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/hello", headers=headers)


async def test_request_log_lines_carry_the_request_id_returned_to_the_caller(
    captured: Captured,
) -> None:
    response = await get_hello()

    line = captured.with_event("saying hello")
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32
    assert line["request_id"] == request_id
    assert line["action"] == "said_hello"
    assert line["level"] == "info"
    assert line["logger"] == "tests.observability"
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("given", "reused"),
    [("req-42.a_B", True), ("has space", False), ("x" * 65, False), ("", False)],
)
async def test_callers_request_id_is_reused_only_when_sane(
    captured: Captured, given: str, reused: bool
) -> None:
    response = await get_hello({"X-Request-ID": given})

    returned = response.headers["X-Request-ID"]
    assert (returned == given) is reused
    assert captured.with_event("saying hello")["request_id"] == returned


async def test_job_log_lines_reach_the_service_log_with_the_job_bound(
    captured: Captured, engine: Engine
) -> None:
    job_id = await engine.jobs.enqueue(Contextual.inspect_sync, "the ledger")

    await engine.drain()

    line = captured.with_event("sync work on the ledger")
    assert line["job_id"] == str(job_id)
    assert (line["attempt"], line["queue"]) == (1, "default")
    assert line["handler"] == "Contextual.inspect_sync"
    # still stored with the job, too
    view = await engine.jobs.get(job_id)
    assert [log.message for log in view.logs] == ["sync work on the ledger"]
    assert Journal.names() == ["inspect_sync"]


def test_lines_inside_a_span_carry_its_trace_id(captured: Captured, tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("work") as span:
        logger.info("inside")
    logger.info("outside")

    trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    assert captured.with_event("inside")["trace_id"] == trace_id
    assert "trace_id" not in captured.with_event("outside")


def test_uvicorn_lines_lose_their_coloured_copy(captured: Captured) -> None:
    logging.getLogger("uvicorn.error").info(
        "Started server process", extra={"color_message": "\x1b[32mStarted\x1b[0m"}
    )

    line = captured.with_event("Started server process")
    assert "color_message" not in line
    assert line["logger"] == "uvicorn.error"


def test_exceptions_are_rendered_in_json(captured: Captured) -> None:
    try:
        raise ValueError("bad input")
    except ValueError:
        logger.exception("it broke")

    assert "ValueError: bad input" in captured.with_event("it broke")["exception"]


def test_console_format_renders_context_and_exceptions() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("INFO", "console", stream=stream)
        with structlog.contextvars.bound_contextvars(job_id="j-1"):
            try:
                raise ValueError("bad input")
            except ValueError:
                logger.exception("it broke", extra={"action": "broke"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()

    text = stream.getvalue()
    assert "it broke" in text and "job_id=j-1" in text and "action=broke" in text
    assert "ValueError" in text and "bad input" in text


async def test_credentials_in_job_errors_and_log_lines_never_reach_the_service_log(
    captured: Captured, engine: Engine
) -> None:
    await engine.jobs.options(retry=RetryPolicy.none()).enqueue(Hostile.raise_text)

    await engine.drain()

    log = captured.stream.getvalue()
    assert "s3cret" not in log and "hunter2" not in log
    assert captured.with_event(f"log {HOSTILE_STORED}")["level"] == "warning"
    [failed] = [line for line in captured.lines() if line.get("action") == "job_failed"]
    assert failed["event"].endswith(HOSTILE_STORED)
