"""The engine's metrics, spans and log context, recorded where jobs are created and run.

Only OpenTelemetry's API is used here: until the host configures an SDK, spans are no-ops
(yet a caller's trace context still passes through to the job). Metrics go to
prometheus-client's default registry; their labels are the queue and the handler name, both
bounded (configuration and the handler allow-list), never a job id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, propagate, trace
from prometheus_client import Counter, Histogram
from structlog.contextvars import bound_contextvars

from application.jobs import JobState
from infrastructure.jobs.engine.model import Finish, Job

ENQUEUED = Counter(
    "jobs_enqueued", "Jobs created (not counting unique-key duplicates).", ["queue", "handler"]
)
PROCESSED = Counter(
    "jobs_processed",
    "Executions by outcome: succeeded, retried, failed (for good) or cancelled.",
    ["queue", "handler", "outcome"],
)
FAILED = Counter(
    "jobs_failed", "Executions that raised, whether retried or not.", ["queue", "handler"]
)
DURATION = Histogram(
    "job_duration_seconds", "Time a handler ran, to its result or error.", ["queue", "handler"]
)
PICKUP_LATENCY = Histogram(
    "job_pickup_latency_seconds",
    "Claim time minus the time the job became runnable: max(created_at, run_at). "
    "Continuations include their wait for the parent.",
    ["queue"],
)
TICK_LAG = Histogram(
    "recurring_tick_lag_seconds", "Creation time of a recurring job's tick minus its fire time."
)

LINK_KEY = "jobs-link"
"""Set in a job's trace context when its execution should start a new trace linked to the
producer instead of continuing it: continuations and recurring jobs run long after (or
independently of) what created them, so parenting would stretch one trace over hours."""

_tracer = trace.get_tracer("infrastructure.jobs")


# --- creating jobs ----------------------------------------------------------------------------
@contextmanager
def producing(name: str, *, queue: str | None = None) -> Iterator[dict[str, str]]:
    """A PRODUCER span for creating jobs; yields its W3C carrier for `traced`."""
    attributes = {"messaging.system": "jobs", "messaging.operation.type": "send"}
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    with _tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier


def traced(job: Job, carrier: dict[str, str]) -> Job:
    """`job` carrying `carrier`, marked to be linked rather than parented if it follows
    another job or a schedule."""
    follows = job.parent_id is not None or job.recurring_id is not None
    if carrier and (follows or job.state is JobState.AWAITING):
        carrier = {**carrier, LINK_KEY: "1"}
    return dataclasses.replace(job, trace_context=carrier)


def created(job: Job) -> None:
    ENQUEUED.labels(job.queue, job.handler).inc()


def ticked(job: Job, fire_at: dt.datetime) -> None:
    created(job)
    TICK_LAG.observe(max(0.0, (job.created_at - fire_at).total_seconds()))


# --- running jobs -----------------------------------------------------------------------------
def claimed(job: Job, now: dt.datetime) -> None:
    runnable = max(job.created_at, job.run_at or job.created_at)
    PICKUP_LATENCY.labels(job.queue).observe(max(0.0, (now - runnable).total_seconds()))


@contextmanager
def running(job: Job) -> Iterator[None]:
    """Around a handler's execution: the job in the log context, a CONSUMER span restored
    from the job's trace context, and the duration measured when it returns."""
    parent, links = _parent_of(job.trace_context)
    attributes: dict[str, str | int] = {
        "messaging.system": "jobs",
        "messaging.operation.type": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": str(job.id),
        "job.handler": job.handler,
        "job.attempt": job.attempt,
    }
    with (
        bound_contextvars(
            job_id=str(job.id), attempt=job.attempt, queue=job.queue, handler=job.handler
        ),
        _tracer.start_as_current_span(
            f"process {job.handler}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
            # failures are recorded by `failed`: a failing job is an outcome, not an exception
            record_exception=False,
            set_status_on_exception=False,
        ),
    ):
        started = time.perf_counter()
        yield
        DURATION.labels(job.queue, job.handler).observe(time.perf_counter() - started)


def _parent_of(carrier: dict[str, str]) -> tuple[context.Context, list[trace.Link]]:
    stored = propagate.extract(carrier)
    if LINK_KEY not in carrier:
        return stored, []
    producer = trace.get_current_span(stored).get_span_context()
    # an empty context makes the span a root: a new trace, linked to its producer
    return context.Context(), [trace.Link(producer)] if producer.is_valid else []


def failed(exc: BaseException) -> None:
    """Mark the current (consumer) span as failed by `exc`."""
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def finished(job: Job, finish: Finish | None) -> None:
    """Count an execution by how it ended; `finish` is None when it was cancelled."""
    if finish is None:
        outcome = "cancelled"
    elif finish.error is None:
        outcome = "succeeded"
    else:
        outcome = "retried" if finish.state is JobState.SCHEDULED else "failed"
        FAILED.labels(job.queue, job.handler).inc()
    PROCESSED.labels(job.queue, job.handler, outcome).inc()
