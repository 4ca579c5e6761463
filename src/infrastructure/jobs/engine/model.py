"""Records the engine and its stores exchange."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from application.jobs import (
    BatchId,
    ContinueOn,
    Cron,
    JobError,
    JobId,
    JobState,
    JSONValue,
    LogLine,
    RetryPolicy,
    SkippedJob,
)


def as_in_arguments_json(text: str) -> str:
    """`text` as it appears in the stored arguments JSON, which writes each non-ASCII
    character as an escape (`é` as `\\u00e9`): what a text filter looks for, so that it
    matches non-ASCII text in rows old and new alike."""
    return "".join(char if char.isascii() else json.dumps(char)[1:-1] for char in text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as stored: what to run, how, and where it stands."""

    id: JobId
    handler: str
    args: list[JSONValue]
    kwargs: dict[str, JSONValue]
    queue: str
    state: JobState
    created_at: dt.datetime
    run_at: dt.datetime | None = None
    attempt: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: dt.timedelta | None = None
    unique_key: str | None = None
    parent_id: JobId | None = None
    continue_on: ContinueOn = ContinueOn.SUCCESS
    batch_id: BatchId | None = None
    recurring_id: str | None = None
    reason: str = ""
    """Why the job is created in `state`; recorded as its first transition."""
    trace_context: dict[str, str] = field(default_factory=dict)
    """W3C trace context (`traceparent`, `tracestate`) captured when the job was created."""
    expires_at: dt.datetime | None = None
    """A job not started by then is deleted as expired."""
    request: Request | None = None
    """The idempotency key of the call that creates it, if it has one."""

    def first_move(self) -> Move:
        """The transition recorded when the job is stored; a scheduled job's says when it
        runs, so its history keeps the due time."""
        data: dict[str, JSONValue] | None = None
        if self.state is JobState.SCHEDULED and self.run_at is not None:
            data = {"run_at": self.run_at.isoformat()}
        return Move(self.id, self.state, self.reason, data)

    def expired(self, now: dt.datetime) -> bool:
        """Whether the job's deadline passed before it started."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A call made with an idempotency key: the key, and a digest of what was asked."""

    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NewBatch:
    id: BatchId
    continuation: Job | None
    """Created `awaiting`; enqueued once every job of the batch has finished."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A job a worker holds. Every write about it must present the lease token."""

    job: Job
    token: UUID
    lease_until: dt.datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """What a running job produced so far: progress and new log lines."""

    progress: float | None = None
    logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """The state a claimed job moves to after an execution."""

    job_id: JobId
    token: UUID
    state: JobState
    reason: str
    run_at: dt.datetime | None = None
    error: JobError | None = None
    result: JSONValue = None
    output: Output = field(default_factory=Output)
    batch_id: BatchId | None = None
    """The job's batch, whose continuation this finish may release."""
    queue: str | None = None
    """A new queue for the job (a middleware may move it, e.g. to a dead-letter queue)."""


@dataclass(frozen=True, slots=True)
class Move:
    """One transition to apply: job, target state, reason, history data."""

    job_id: JobId
    to: JobState
    reason: str
    data: dict[str, JSONValue] | None = None


@dataclass(frozen=True, slots=True)
class BulkMove:
    """What a bulk move did: the jobs moved, and those that stayed with why."""

    moved: set[JobId]
    skipped: list[SkippedJob]


Elect = Callable[[Job, Move], Move]
"""Decides a move of a job that no worker holds (delete, requeue, rescue): the move to make,
another, or one to the state the job is in (a veto). The middleware's `elect_state`."""


def keep(job: Job, move: Move) -> Move:
    """The election that changes nothing."""
    return move


@dataclass(frozen=True, slots=True, kw_only=True)
class UnloadableRecurring:
    """A stored recurring job this process cannot read, e.g. a time zone its tz database lacks
    or an expression its cron library refuses: another replica may still fire it."""

    id: str
    next_run_at: dt.datetime | None
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecurringJob:
    """A recurring job's definition and schedule position."""

    id: str
    cron: Cron
    handler: str
    args: list[JSONValue]
    kwargs: dict[str, JSONValue]
    queue: str
    retry: RetryPolicy
    timeout: dt.timedelta | None
    next_run_at: dt.datetime | None
    paused: bool = False
    last_run_at: dt.datetime | None = None
    last_job_id: JobId | None = None

    def new_job(self, now: dt.datetime, *, reason: str) -> Job:
        """The job this recurring job creates, at a tick or when triggered."""
        return Job(
            id=JobId(uuid4()),
            handler=self.handler,
            args=self.args,
            kwargs=self.kwargs,
            queue=self.queue,
            state=JobState.ENQUEUED,
            created_at=now,
            retry=self.retry,
            timeout=self.timeout,
            recurring_id=self.id,
            reason=reason,
        )

    def same_schedule(self, other: RecurringJob) -> bool:
        return (self.cron.expression, self.cron.timezone) == (
            other.cron.expression,
            other.cron.timezone,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One fire time of a recurring job and the job created for it."""

    fire_at: dt.datetime
    job: Job


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    id: str
    queues: tuple[str, ...]
    concurrency: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
