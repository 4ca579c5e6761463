"""Our logs, metrics and traces of jobs, as job middleware (`default_middleware()`).

Only OpenTelemetry's API is used here: until the host configures an SDK, spans are no-ops
(yet a caller's trace context still passes through to the job). Metrics go to
prometheus-client's default registry; their labels are the queue and the handler name, both
bounded (configuration and the handler allow-list), never a job id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping
from contextvars import Token

from opentelemetry import context, propagate, trace
from prometheus_client import Counter, Histogram
from structlog.contextvars import bind_contextvars, reset_contextvars

from application.jobs import JobId, JobState, JSONValue
from infrastructure.jobs.engine.execution import error_of
from infrastructure.jobs.engine.middleware import Enqueue, JobMiddleware
from infrastructure.jobs.engine.model import Job
from infrastructure.jobs.engine.stored_text import stored_text

logger = logging.getLogger("infrastructure.jobs")

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


def default_middleware() -> list[JobMiddleware]:
    """Logs, traces and metrics, in this order (logging outermost, so every line of a job,
    the others' included, carries the job's context)."""
    return [LoggingMiddleware(), TracingMiddleware(), MetricsMiddleware()]


def outcome_of(job: Job, error: BaseException | None) -> str:
    """How an execution ended: succeeded, retried, failed (for good) or cancelled."""
    if error is None:
        return "succeeded"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "retried" if job.attempt < job.retry.attempts else "failed"


class LoggingMiddleware(JobMiddleware):
    """A line per created job (per batch), the job's context bound to every line logged while
    it runs, and a line per outcome."""

    def __init__(self) -> None:
        self._bound: dict[JobId, Mapping[str, Token[object]]] = {}

    def after_enqueue(self, enqueue: Enqueue, *, error: BaseException | None) -> None:
        if error is not None or enqueue.operation == "tick":
            return  # the scheduler logs its ticks
        if enqueue.operation == "batch":
            batch_id = str(enqueue.jobs[0].batch_id)
            extra = {"action": "batch_created", "batch_id": batch_id}
            logger.info("batch %s created with %d jobs", batch_id, len(enqueue.jobs), extra=extra)
            return
        for job, created in zip(enqueue.jobs, enqueue.created, strict=True):
            how = job.reason if created else "already active (unique key)"
            extra = {"action": "job_created", "job_id": str(job.id), "queue": job.queue}
            logger.info("job %s %s: %s", job.id, how, job.handler, extra=extra)

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        self._bound[job.id] = bind_contextvars(
            job_id=str(job.id), attempt=job.attempt, queue=job.queue, handler=job.handler
        )

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        try:
            _log_outcome(job, outcome_of(job, error), error)
        finally:
            reset_contextvars(**self._bound.pop(job.id, {}))


def _log_outcome(job: Job, outcome: str, error: BaseException | None) -> None:
    message = "" if error is None else stored_text(str(error))  # no credentials in the logs
    extra = {"action": f"job_{outcome}", "job_id": str(job.id), "handler": job.handler}
    if outcome == "succeeded":
        logger.info("job %s %s succeeded", job.id, job.handler, extra=extra)
    elif outcome == "cancelled":
        logger.info("job %s %s cancelled", job.id, job.handler, extra=extra)
    elif outcome == "retried":
        attempts = f"attempt {job.attempt} of {job.retry.attempts}"
        logger.warning(
            "job %s %s failed (%s): %s", job.id, job.handler, attempts, message, extra=extra
        )
    else:
        logger.error("job %s %s failed for good: %s", job.id, job.handler, message, extra=extra)


@dataclasses.dataclass(slots=True)
class _Open:
    """A span made current by a `before_*` hook, until its `after_*` hook."""

    span: trace.Span
    token: Token[context.Context]

    def close(self, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, asyncio.CancelledError):
            recorded = error_of(error)  # redacted, as stored
            self.span.record_exception(
                error,
                attributes={
                    "exception.message": recorded.message,
                    "exception.stacktrace": recorded.traceback,
                },
            )
            message = f"{type(error).__name__}: {recorded.message}"
            self.span.set_status(trace.StatusCode.ERROR, message)
        context.detach(self.token)
        self.span.end()


def _opened(span: trace.Span) -> _Open:
    return _Open(span, context.attach(trace.set_span_in_context(span)))


class TracingMiddleware(JobMiddleware):
    """A PRODUCER span around creating jobs, whose context each job keeps; a CONSUMER span
    around each execution, restored from it (linked, for continuations and ticks)."""

    def __init__(self) -> None:
        self._producers: dict[int, _Open] = {}
        self._consumers: dict[JobId, _Open] = {}

    def before_enqueue(self, enqueue: Enqueue) -> None:
        first = enqueue.jobs[0]
        attributes = {"messaging.system": "jobs", "messaging.operation.type": "send"}
        if enqueue.operation == "batch":
            name = "enqueue batch"
        else:
            name = f"{enqueue.operation} {first.handler}"
            attributes["messaging.destination.name"] = first.queue
        span = _tracer.start_span(name, kind=trace.SpanKind.PRODUCER, attributes=attributes)
        self._producers[id(enqueue)] = _opened(span)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        enqueue.jobs = [_traced(job, carrier) for job in enqueue.jobs]

    def after_enqueue(self, enqueue: Enqueue, *, error: BaseException | None) -> None:
        if (opened := self._producers.pop(id(enqueue), None)) is not None:
            opened.close(error)

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        parent, links = _parent_of(job.trace_context)
        attributes: dict[str, str | int] = {
            "messaging.system": "jobs",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "job.handler": job.handler,
            "job.attempt": job.attempt,
        }
        span = _tracer.start_span(
            f"process {job.handler}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        )
        self._consumers[job.id] = _opened(span)

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        if (opened := self._consumers.pop(job.id, None)) is not None:
            opened.close(error)


def _traced(job: Job, carrier: dict[str, str]) -> Job:
    """`job` carrying `carrier`, marked to be linked rather than parented if it follows
    another job or a schedule."""
    if not carrier and not job.trace_context:  # nothing to carry (no SDK): no copy to make
        return job
    follows = job.parent_id is not None or job.recurring_id is not None
    if follows or job.state is JobState.AWAITING:
        carrier = {**carrier, LINK_KEY: "1"}
    return dataclasses.replace(job, trace_context=carrier)


def _parent_of(carrier: dict[str, str]) -> tuple[context.Context, list[trace.Link]]:
    stored = propagate.extract(carrier)
    if LINK_KEY not in carrier:
        return stored, []
    producer = trace.get_current_span(stored).get_span_context()
    # an empty context makes the span a root: a new trace, linked to its producer
    return context.Context(), [trace.Link(producer)] if producer.is_valid else []


class MetricsMiddleware(JobMiddleware):
    """Jobs created, pickup latency, run time, executions by outcome, recurring tick lag."""

    def __init__(self) -> None:
        self._started: dict[JobId, float] = {}

    def after_enqueue(self, enqueue: Enqueue, *, error: BaseException | None) -> None:
        for job, created in zip(enqueue.jobs, enqueue.created, strict=False):
            if created:
                ENQUEUED.labels(job.queue, job.handler).inc()
        for job, fire_at in zip(enqueue.jobs, enqueue.fire_times, strict=False):
            if all(enqueue.created):
                TICK_LAG.observe(max(0.0, (job.created_at - fire_at).total_seconds()))

    def before_perform(self, job: Job, *, now: dt.datetime) -> None:
        runnable = max(job.created_at, job.run_at or job.created_at)
        PICKUP_LATENCY.labels(job.queue).observe(max(0.0, (now - runnable).total_seconds()))
        self._started[job.id] = time.perf_counter()

    def after_perform(self, job: Job, *, result: JSONValue, error: BaseException | None) -> None:
        started = self._started.pop(job.id, None)
        outcome = outcome_of(job, error)
        if outcome != "cancelled" and started is not None:
            DURATION.labels(job.queue, job.handler).observe(time.perf_counter() - started)
        if outcome in ("retried", "failed"):
            FAILED.labels(job.queue, job.handler).inc()
        PROCESSED.labels(job.queue, job.handler, outcome).inc()
