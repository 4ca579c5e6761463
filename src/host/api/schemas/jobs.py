"""Bodies of handlers and jobs."""

from __future__ import annotations

import datetime as dt
from typing import Self
from uuid import UUID

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    model_validator,
)

from application.jobs import (
    Explanation,
    HandlerInfo,
    JobState,
    JobView,
    Obstacle,
)
from host.api.inputs import Instant, Name, QueueName
from host.api.schemas.base import MAX_DELAY_SECONDS, Body, View, fields_of


class HandlerOut(View):
    """A registered handler: only these can be enqueued."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "EmailJobs.send_welcome",
                    "queue": "critical",
                    "is_async": True,
                    "arguments": {
                        "type": "object",
                        "properties": {"user_id": {"type": "string", "format": "uuid"}},
                        "required": ["user_id"],
                    },
                }
            ]
        }
    )

    name: str
    queue: str = Field(description="The queue its jobs go to unless told otherwise.")
    is_async: bool
    arguments: dict[str, JsonValue] = Field(
        description="JSON schema of the arguments by name (positional ones in this order)."
    )

    @classmethod
    def of(cls, info: HandlerInfo) -> Self:
        return cls(
            name=info.name,
            queue=info.queue,
            is_async=info.is_async,
            arguments=info.arguments_schema,
        )


class EnqueueRequest(Body):
    """A job to create: now, after a delay, at an instant, or after another job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "handler": "EmailJobs.send_welcome",
                    "args": ["0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"],
                    "delay_seconds": 30,
                }
            ]
        }
    )

    handler: Name = Field(description="A registered handler's name (`GET /api/handlers`).")
    args: list[JsonValue] = Field(default_factory=list, max_length=1000)
    kwargs: dict[str, JsonValue] = Field(default_factory=dict, max_length=1000)
    queue: QueueName | None = Field(None, description="Overrides the handler's queue.")
    delay_seconds: StrictFloat | None = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, allow_inf_nan=False, description="Run after this delay."
    )
    run_at: Instant | None = Field(None, description="Run at this instant (with an offset).")
    unique_key: Name | None = Field(
        None, description="While a job with this key is active, its id is returned instead."
    )
    continue_after: UUID | None = Field(None, description="Run once this job has succeeded.")

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        starts = [self.delay_seconds, self.run_at, self.continue_after]
        if sum(start is not None for start in starts) > 1:
            raise ValueError("give at most one of delay_seconds, run_at and continue_after")
        return self


class JobCreated(View):
    """The created job (or, with an active unique key, the existing one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "state": "enqueued"}]
        }
    )

    id: UUID
    state: JobState


class TransitionOut(View):
    state: JobState
    at: dt.datetime
    reason: str
    data: dict[str, JsonValue]


class ErrorOut(View):
    type: str
    message: str
    traceback: str


class LogLineOut(View):
    at: dt.datetime
    level: str
    message: str


class JobOut(View):
    """A job: where it is, how it got there, what it logged and returned."""

    id: UUID
    handler: str
    args: list[JsonValue]
    kwargs: dict[str, JsonValue]
    queue: str
    state: JobState
    created_at: dt.datetime
    run_at: dt.datetime | None = Field(
        description="When the job runs, or ran, as last scheduled (kept after it came due)."
    )
    expires_at: dt.datetime | None = Field(
        description="Deadline: not started by then, the job is deleted as expired."
    )
    attempt: int = Field(description="Executions started so far.")
    max_attempts: int
    history: list[TransitionOut] = Field(description="Every state change, oldest first.")
    error: ErrorOut | None = Field(description="Why the last execution failed, if it did.")
    progress: float
    logs: list[LogLineOut] = Field(description="The job's own log lines.")
    result: JsonValue
    unique_key: str | None
    parent_id: UUID | None
    batch_id: UUID | None
    recurring_id: str | None
    queue_unserved: bool = Field(
        description="The job waits for a queue that no live server takes jobs from: it "
        "will not run until a server with that queue starts."
    )
    details_hidden: bool = Field(
        False,
        description="Tracebacks, log lines and the result are left out: they need a higher "
        "scope (`APP_AUTH__DETAILS_SCOPE`).",
    )

    @classmethod
    def of(cls, job: JobView, *, details_hidden: bool = False) -> Self:
        return cls(
            details_hidden=details_hidden,
            id=job.id,
            handler=job.handler,
            args=job.args,
            kwargs=job.kwargs,
            queue=job.queue,
            state=job.state,
            created_at=job.created_at,
            run_at=job.run_at,
            expires_at=job.expires_at,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            history=[
                TransitionOut(state=t.state, at=t.at, reason=t.reason, data=t.data)
                for t in job.history
            ],
            error=None if job.error is None else ErrorOut(**fields_of(job.error)),
            progress=job.progress,
            logs=[LogLineOut(at=ln.at, level=ln.level, message=ln.message) for ln in job.logs],
            result=job.result,
            unique_key=job.unique_key,
            parent_id=job.parent_id,
            batch_id=job.batch_id,
            recurring_id=job.recurring_id,
            queue_unserved=job.queue_unserved,
        )


class ReasonOut(View):
    obstacle: Obstacle
    text: str = Field(description="The reason in plain words.")
    facts: dict[str, JsonValue] = Field(description="What it rests on: ids, times, counts.")


class ExplanationOut(View):
    """Why a job is not running, as read from the store at `at` (most decisive first)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                    "state": "enqueued",
                    "at": "2026-01-05T09:00:00Z",
                    "reasons": [
                        {
                            "obstacle": "no_server",
                            "text": "It is enqueued on queue 'mail', which no live server "
                            "listens to.",
                            "facts": {"queue": "mail"},
                        }
                    ],
                }
            ]
        }
    )

    job_id: UUID
    state: JobState
    at: dt.datetime
    reasons: list[ReasonOut]

    @classmethod
    def of(cls, explanation: Explanation) -> Self:
        return cls(
            job_id=explanation.job_id,
            state=explanation.state,
            at=explanation.at,
            reasons=[ReasonOut(**fields_of(reason)) for reason in explanation.reasons],
        )
