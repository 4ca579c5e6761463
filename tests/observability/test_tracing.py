"""Trace context flows from whoever creates a job into its execution: parented for plain
jobs, linked (a new trace) for continuations and recurring ticks."""

from __future__ import annotations

import hashlib
import sys
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from application.jobs import JobId, JobState, RetryPolicy
from host import request_context
from host.app import create_app
from host.container import Container
from host.request_context import RequestContextMiddleware
from host.settings import (
    ApiKey,
    AuthSettings,
    DatabaseSettings,
    JobsSettings,
    Scope,
    Settings,
    TracingSettings,
)
from host.tracing import TracingUnavailable, configure_tracing
from infrastructure.jobs import telemetry
from tests.contract.handlers import Recorder
from tests.engine_loop import engine_of
from tests.observability.conftest import Engine, Spans

CALLER_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{CALLER_TRACE_ID:032x}-{CALLER_SPAN_ID:016x}-01"


def context_of(span: ReadableSpan) -> trace.SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def parent_of(span: ReadableSpan) -> trace.SpanContext:
    assert span.parent is not None
    return span.parent


def linked_to(span: ReadableSpan) -> list[tuple[int, int]]:
    return [(link.context.trace_id, link.context.span_id) for link in span.links]


def ids(span: ReadableSpan) -> tuple[int, int]:
    return context_of(span).trace_id, context_of(span).span_id


async def test_job_enqueued_inside_a_span_runs_in_a_child_of_its_producer(
    engine: Engine, spans: Spans, tracer: trace.Tracer
) -> None:
    # Given a job enqueued while a span is current
    with tracer.start_as_current_span("caller") as caller:
        job_id = await engine.jobs.enqueue(Recorder.record, 1)

    # When the worker runs it
    await engine.drain()

    # Then: caller -> producer -> consumer, in one trace
    producer = spans.one("enqueue Recorder.record")
    consumer = spans.one("process Recorder.record")
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert parent_of(producer).span_id == caller.get_span_context().span_id
    assert context_of(consumer).trace_id == caller.get_span_context().trace_id
    assert parent_of(consumer).span_id == context_of(producer).span_id
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == str(job_id)
    assert consumer.attributes["messaging.destination.name"] == "default"
    assert consumer.attributes["job.attempt"] == 1
    assert consumer.status.status_code is StatusCode.UNSET


async def test_failing_job_marks_its_span_as_failed(engine: Engine, spans: Spans) -> None:
    await engine.jobs.options(retry=RetryPolicy(attempts=1)).enqueue(Recorder.fail, "boom")

    await engine.drain()

    consumer = spans.one("process Recorder.fail")
    assert consumer.status.status_code is StatusCode.ERROR
    assert [event.name for event in consumer.events] == ["exception"]


async def test_continuation_starts_a_new_trace_linked_to_its_producer(
    engine: Engine, spans: Spans, tracer: trace.Tracer
) -> None:
    with tracer.start_as_current_span("caller") as caller:
        parent = await engine.jobs.enqueue(Recorder.record, 1)
        await engine.jobs.continue_with(parent, Recorder.pair, "a", "b")

    await engine.drain()

    producer = spans.one("continue Recorder.pair")
    consumer = spans.one("process Recorder.pair")
    assert consumer.parent is None
    assert context_of(consumer).trace_id != caller.get_span_context().trace_id
    assert linked_to(consumer) == [ids(producer)]


async def test_batch_jobs_are_children_and_its_continuation_is_linked(
    engine: Engine, spans: Spans
) -> None:
    async with engine.jobs.batch() as batch:
        await batch.enqueue(Recorder.record, 1)
        batch.then(Recorder.pair, "all", "done")

    await engine.drain()

    producer = spans.one("enqueue batch")
    member = spans.one("process Recorder.record")
    continuation = spans.one("process Recorder.pair")
    assert parent_of(member).span_id == context_of(producer).span_id
    assert continuation.parent is None
    assert linked_to(continuation) == [ids(producer)]


async def test_recurring_tick_runs_in_a_new_trace_linked_to_the_tick(
    engine: Engine, spans: Spans
) -> None:
    await engine.jobs.add_or_update_recurring("every-minute", "* * * * *", Recorder.record, 7)
    engine.clock.advance(timedelta(minutes=1))

    await engine.drain()

    tick = spans.one("tick Recorder.record")
    consumer = spans.one("process Recorder.record")
    assert tick.kind is SpanKind.PRODUCER
    assert consumer.parent is None
    assert context_of(consumer).trace_id != context_of(tick).trace_id
    assert linked_to(consumer) == [ids(tick)]


async def test_triggered_recurring_job_is_linked_to_the_trigger(
    engine: Engine, spans: Spans
) -> None:
    await engine.jobs.add_or_update_recurring("hourly", "0 * * * *", Recorder.record, 7)
    await engine.jobs.trigger_recurring("hourly")

    await engine.drain()

    trigger = spans.one("trigger Recorder.record")
    consumer = spans.one("process Recorder.record")
    assert consumer.parent is None
    assert linked_to(consumer) == [ids(trigger)]


def app_enqueuing_through(engine: Engine, *, native_tracing: bool = True) -> FastAPI:
    """A small app with our middleware whose route enqueues a job; FastAPI's own tracing
    (on whenever an SDK is configured) can be turned off to see our middleware's span."""
    app = FastAPI(telemetry={"tracing": native_tracing})

    @app.post("/records/{value}")
    async def record(value: int) -> dict[str, str]:
        return {"id": str(await engine.jobs.enqueue(Recorder.record, value))}

    app.add_middleware(RequestContextMiddleware)
    return app


async def post_traced(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, headers={"traceparent": TRACEPARENT})


@pytest.mark.parametrize("native_tracing", [True, False], ids=["fastapi-span", "our-span"])
async def test_request_with_traceparent_carries_the_callers_trace_into_the_job(
    engine: Engine, spans: Spans, native_tracing: bool
) -> None:
    # Given a request from a caller whose trace is in `traceparent`
    app = app_enqueuing_through(engine, native_tracing=native_tracing)
    assert (await post_traced(app, "/records/5")).status_code == 200

    # When the job it enqueued runs
    await engine.drain()

    # Then one server span continues the caller's trace, and the job's spans join it
    [server] = [s for s in spans.all() if s.kind is SpanKind.SERVER]
    producer = spans.one("enqueue Recorder.record")
    consumer = spans.one("process Recorder.record")
    assert server.name == "POST /records/{value}"
    assert parent_of(server).span_id == CALLER_SPAN_ID
    assert {context_of(s).trace_id for s in (server, producer, consumer)} == {CALLER_TRACE_ID}
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/records/{value}"
    assert server.attributes["http.response.status_code"] == 200


async def test_without_an_sdk_jobs_run_and_the_callers_context_still_passes_through(
    engine: Engine, spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API's no-op tracer everywhere, as when no SDK is configured
    monkeypatch.setattr(telemetry, "_tracer", trace.NoOpTracer())
    monkeypatch.setattr(request_context, "_tracer", trace.NoOpTracer())
    app = app_enqueuing_through(engine, native_tracing=False)

    # When one job is enqueued by a traced request and another outside any trace
    response = await post_traced(app, "/records/1")
    traced = JobId(UUID(response.json()["id"]))
    plain = await engine.jobs.enqueue(Recorder.record, 2)

    # Then only the first carries a trace context: the caller's
    claims = await engine.store.acquire(
        ["default"], now=engine.clock.now(), lease=timedelta(seconds=30), limit=2, server_id="x"
    )
    contexts = {claim.job.id: claim.job.trace_context for claim in claims}
    assert contexts == {traced: {"traceparent": TRACEPARENT}, plain: {}}

    # and both run, recording no span
    await engine.store.release(
        [(claim.job.id, claim.token) for claim in claims], now=engine.clock.now(), reason="test"
    )
    await engine.drain()
    assert (await engine.jobs.get(traced)).state is JobState.SUCCEEDED
    assert (await engine.jobs.get(plain)).state is JobState.SUCCEEDED
    assert spans.all() == []


def test_configure_tracing_does_nothing_without_an_exporter() -> None:
    before = trace.get_tracer_provider()
    configure_tracing(Settings(tracing=TracingSettings(exporter="none")))
    assert trace.get_tracer_provider() is before


def test_configure_tracing_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("opentelemetry.sdk.resources", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(TracingUnavailable, match="otel"):
        configure_tracing(Settings(tracing=TracingSettings(exporter="otlp")))


async def test_job_posted_to_the_api_runs_in_the_callers_trace(
    spans: Spans, tmp_path: Path
) -> None:
    # Given the app as `serve` builds it (its worker driven by hand, not started)
    key = "write-key-for-tracing-tests"
    writer = ApiKey(name="ci", sha256=hashlib.sha256(key.encode()).hexdigest(), scope=Scope.WRITE)
    app = create_app(
        Settings(
            db=DatabaseSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}"),
            jobs=JobsSettings(backend="memory"),
            auth=AuthSettings(api_keys=[writer]),
            temp_directory=tmp_path / "tmp",
        )
    )
    container: Container = app.state.container

    # When a traced caller posts a job, and a worker runs it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/api/jobs",
            json={"handler": "HeartbeatJobs.beat"},
            headers={"X-API-Key": key, "traceparent": TRACEPARENT},
        )
    assert response.status_code == 201
    try:
        assert await engine_of(container).worker().run_once() == 1
    finally:
        engine_of(container).executor.shutdown()

    # Then its execution belongs to the caller's trace
    consumer = spans.one("process HeartbeatJobs.beat")
    assert context_of(consumer).trace_id == CALLER_TRACE_ID
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == response.json()["id"]
