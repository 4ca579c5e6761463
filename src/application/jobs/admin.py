"""The operations port: jobs by handler name with JSON arguments, lists, counts and servers.

`JobService` is what application code uses, with typed handlers. `JobAdmin` is what the
operators' tools use (REST API, CLI, dashboard): they know handlers only by name and hold
arguments as JSON, and they list, count and act on many jobs at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from application.jobs.schedules import Cron
from application.jobs.values import (
    BatchView,
    JobId,
    JobState,
    JSONValue,
    RecurringView,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerInfo:
    """A registered handler and the JSON schema of its arguments (an object schema keyed by
    parameter name; positional arguments follow the same order)."""

    name: str
    queue: str
    is_async: bool
    arguments_schema: dict[str, JSONValue]


class JobSort(StrEnum):
    """The orders a job list can take (an allow-list: nothing else reaches the database)."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    RECENTLY_CHANGED = "-state_at"
    LEAST_RECENTLY_CHANGED = "state_at"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilter:
    """Which jobs a list or a bulk action covers; unset fields match every job.

    `text` matches a substring of the job's arguments as JSON (case-sensitive; non-ASCII
    characters match themselves, whatever escapes the store writes).
    `created_from` is inclusive, `created_to` exclusive. `parent_id` keeps a job's
    continuations; `retries` keeps only scheduled jobs that failed before: failed attempts
    waiting for their next try.
    """

    states: frozenset[JobState] = frozenset()
    queue: str | None = None
    handler: str | None = None
    text: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    recurring_id: str | None = None
    parent_id: JobId | None = None
    retries: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSummary:
    """One row of a job list."""

    id: JobId
    handler: str
    queue: str
    state: JobState
    created_at: dt.datetime
    state_at: dt.datetime
    run_at: dt.datetime | None
    attempt: int
    progress: float
    error_type: str | None
    recurring_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPage:
    """A page of a job list. `next_cursor` continues it; None on the last page."""

    items: list[JobSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerView:
    """A live worker process."""

    id: str
    queues: tuple[str, ...]
    concurrency: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    running: int = 0
    """Jobs it is processing now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    """A queue with enqueued jobs or a live server listening to it."""

    name: str
    enqueued: int
    oldest_enqueued_at: dt.datetime | None
    servers: int
    """Live servers that take jobs from it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPulse:
    """What changes while a job moves on; a live page compares two pulses of one job."""

    state: JobState
    state_at: dt.datetime
    progress: float
    log_lines: int


class Obstacle(StrEnum):
    """Why a job is not running (or, for `RUNNING`, that it is)."""

    RUNNING = "running"
    SCHEDULED = "scheduled"
    RETRY_SCHEDULED = "retry_scheduled"
    AWAITING_PARENT = "awaiting_parent"
    AWAITING_BATCH = "awaiting_batch"
    NO_SERVER = "no_server"
    WORKERS_BUSY = "workers_busy"
    NEXT_IN_LINE = "next_in_line"
    RECURRING_PAUSED = "recurring_paused"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """One reason in plain words, with the facts it rests on (ids, times, counts)."""

    obstacle: Obstacle
    text: str
    facts: dict[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Why a job is not running, computed from the store at `at` (most decisive reason first)."""

    job_id: JobId
    state: JobState
    at: dt.datetime
    reasons: list[Reason]


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteCount:
    """Jobs that succeeded and failed during the minute starting at `minute`."""

    minute: dt.datetime
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    """Counts by state, and outcomes per minute over a window (oldest minute first)."""

    counts: dict[JobState, int]
    per_minute: list[MinuteCount] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedJob:
    """A job a bulk action left alone, the state it was in (None: gone meanwhile, or not
    read), and why."""

    job_id: JobId
    state: JobState | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkResult:
    """What a bulk action did: jobs matched, changed, and left alone (e.g. processing);
    the first `MAX_SKIPPED_SHOWN` of those left alone with their reason."""

    matched: int
    changed: int
    skipped: int
    skipped_jobs: tuple[SkippedJob, ...] = ()


MAX_SKIPPED_SHOWN = 100
"""Skipped jobs a bulk result names at most (the count covers them all)."""


class BulkAction(StrEnum):
    DELETE = "delete"
    REQUEUE = "requeue"


Progress = Callable[[int], None]
"""Called with the number of jobs handled so far during a bulk action."""


class JobAdmin(Protocol):
    """Operate jobs by handler name and JSON arguments; list, count and act in bulk."""

    def handlers(self) -> list[HandlerInfo]:
        """Registered handlers, ordered by name."""

    async def enqueue(
        self,
        handler: str,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        *,
        queue: str | None = None,
        run_at: dt.datetime | None = None,
        unique_key: str | None = None,
        continue_after: JobId | None = None,
        idempotency_key: str | None = None,
    ) -> JobId:
        """Create a job of the handler named `handler`. JSON arguments are checked against
        its signature (strictly, as JSON: a datetime or UUID parameter takes its string form).

        `run_at` schedules it; `continue_after` makes it a continuation of that job. They
        exclude each other. `idempotency_key` is `JobOptions.idempotency_key`.

        Raises:
            HandlerNotRegistered: no handler has this name.
            InvalidArguments: the arguments do not fit, or both `run_at` and `continue_after`.
            PayloadTooLarge, InvalidSchedule, JobNotFound: as the `JobService` methods.
        """

    async def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron,
        handler: str,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        *,
        queue: str | None = None,
    ) -> RecurringView:
        """Create or replace a recurring job of the handler named `handler`.

        Raises: as `enqueue`, and InvalidSchedule for a bad cron expression or time zone.
        """

    def next_fire_times(
        self, recurring: RecurringView, count: int, *, after: dt.datetime | None = None
    ) -> list[dt.datetime]:
        """The next `count` fire times of a recurring job's schedule after `after` (now);
        none while it is paused."""

    async def list_jobs(
        self,
        where: JobFilter,
        *,
        sort: JobSort = JobSort.NEWEST,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """A page of matching jobs (keyset pagination: pass the previous page's cursor).

        Raises:
            InvalidQuery: the cursor is malformed or belongs to another sort order.
        """

    async def apply(
        self, action: BulkAction, where: JobFilter, *, progress: Progress | None = None
    ) -> BulkResult:
        """Delete or requeue every matching job; processing jobs are skipped by a requeue."""

    async def count(self, where: JobFilter) -> int:
        """How many jobs match."""

    async def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (states without jobs may be missing)."""

    async def stats(self, window: dt.timedelta = dt.timedelta(hours=1)) -> JobStats:
        """Counts by state and outcomes per minute over the last `window` (whole minutes)."""

    async def list_servers(self) -> list[ServerView]:
        """Live servers, ordered by id, with the number of jobs each is running."""

    async def queues(self) -> list[QueueView]:
        """Queues that hold enqueued jobs or that a live server serves, ordered by name."""

    async def list_batches(self, limit: int = 50) -> list[BatchView]:
        """The newest batches, newest first, with their progress."""

    async def pulses(self, job_ids: list[JobId]) -> dict[JobId, JobPulse]:
        """The pulse of each job that exists, in one read whatever the number of jobs."""

    async def explain(self, job_id: JobId) -> Explanation:
        """Why the job is not running: its schedule or retry, the parent or batch it awaits,
        its queue without a live server or with every worker slot busy (and how many jobs are
        ahead of it), its paused recurring job, or how it finished.

        Raises:
            JobNotFound: no job has this id.
        """
