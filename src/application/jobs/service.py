"""The job port: the one interface application code uses to run work in the background."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeAlias

from application.jobs.schedules import Cron
from application.jobs.values import (
    BatchId,
    BatchView,
    ContinueOn,
    JobId,
    JobView,
    RecurringView,
    RetryPolicy,
)

P = ParamSpec("P")

Handler: TypeAlias = Callable[Concatenate[Any, P], object]
"""A job handler: a method of a registered handler class, named through the class
(`EmailJobs.send_welcome`). The type checker matches the call's arguments to its signature."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Per-call options; unset ones fall back to the handler's registration, then defaults.

    Attributes:
        queue: queue to run on.
        retry: retry policy.
        timeout: run time after which the job is cancelled and counted as failed.
        unique_key: while a job with this key is active, enqueueing another returns its id.
        continue_on: for continuations and batch continuations, when they run.
        session: the caller's database session or connection; the job is written in its
            transaction (SQL adapters only).
        expires_at: a deadline (timezone-aware): a job not started by then is deleted with
            the reason "expired" instead of running late.
        expires_in: the deadline as a delay from the call (with `expires_at` too, the
            earlier one counts).
        idempotency_key: a repeat of the call with this key, within the retention period,
            returns the first call's job id and creates nothing, also after that job
            finished (unlike `unique_key`, which only holds while its job is active). A
            repeat with another handler, arguments, queue, unique key or parent raises
            `IdempotencyKeyReused`; the time given is not compared.
    """

    queue: str | None = None
    retry: RetryPolicy | None = None
    timeout: dt.timedelta | None = None
    unique_key: str | None = None
    continue_on: ContinueOn = ContinueOn.SUCCESS
    session: object | None = None
    expires_at: dt.datetime | None = None
    expires_in: dt.timedelta | None = None
    idempotency_key: str | None = None


class Batch(Protocol):
    """Jobs created together, all or none, with an optional continuation."""

    @property
    def id(self) -> BatchId: ...

    async def enqueue(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId:
        """Add a job to the batch; it is created when the batch block exits without error.

        Raises:
            HandlerNotRegistered, InvalidArguments, PayloadTooLarge: as `JobService.enqueue`.
        """

    def then(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId:
        """Set the job that runs once every job of the batch has finished.

        It runs when all succeeded, or with `continue_on=ANY_FINISHED` when all finished
        in any state. Returns its id. Raises as `enqueue`.
        """


class JobService(Protocol):
    """Enqueue, schedule, chain, batch and manage background jobs.

    Every method that takes a handler checks, before anything is stored, that the handler is
    registered and that the arguments fit its signature and serialise to JSON within the size
    limit. The port's own options never mix with the handler's keyword arguments: they are
    given through `options()` or as positional-only parameters.
    """

    def options(
        self,
        *,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: dt.timedelta | None = None,
        unique_key: str | None = None,
        continue_on: ContinueOn | None = None,
        session: object | None = None,
        expires_at: dt.datetime | None = None,
        expires_in: dt.timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> JobService:
        """Return a view of this service whose calls use these options."""

    async def enqueue(self, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs) -> JobId:
        """Create a job that runs as soon as a worker is free.

        Returns the new job's id, or with a unique key that is active, the existing job's id.

        Raises:
            HandlerNotRegistered: the handler is not registered.
            InvalidArguments: the arguments do not fit the signature or do not serialise.
            PayloadTooLarge: the serialised arguments exceed the size limit.
        """

    async def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Handler[P],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> JobId:
        """Create a job that runs after a delay or at a timezone-aware instant.

        Raises:
            InvalidSchedule: `when` is a naive datetime or a negative delay.
            HandlerNotRegistered, InvalidArguments, PayloadTooLarge: as `enqueue`.
        """

    async def continue_with(
        self, parent: JobId, handler: Handler[P], /, *args: P.args, **kwargs: P.kwargs
    ) -> JobId:
        """Create a job that runs after `parent` succeeds (or, with
        `continue_on=ANY_FINISHED`, after it finishes in any state). If the parent has
        already done so, the job is enqueued at once. When an on-success continuation's
        parent is deleted, the continuation is deleted too.

        Raises:
            JobNotFound: no job has the id `parent`.
            HandlerNotRegistered, InvalidArguments, PayloadTooLarge: as `enqueue`.
        """

    def batch(self) -> AbstractAsyncContextManager[Batch]:
        """Collect jobs inside an `async with` block and create them all at its end.

        An exception inside the block creates nothing.
        """

    async def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        handler: Handler[P],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Create or replace the recurring job `recurring_id` (idempotent upsert).

        An unchanged definition keeps its next fire time; a changed schedule recomputes it.
        A plain string is a cron expression in UTC with the default misfire policy.

        Raises:
            InvalidSchedule: a malformed cron expression or an unknown time zone.
            HandlerNotRegistered, InvalidArguments, PayloadTooLarge: as `enqueue`.
        """

    async def remove_recurring(self, recurring_id: str) -> bool:
        """Remove a recurring job; jobs it already created stay. Returns False if unknown."""

    async def trigger_recurring(self, recurring_id: str) -> JobId:
        """Enqueue a job of the recurring job now, outside its schedule (also when paused).

        Raises:
            RecurringJobNotFound: no recurring job has this id.
        """

    async def pause_recurring(self, recurring_id: str) -> None:
        """Stop creating jobs on schedule until resumed.

        Raises:
            RecurringJobNotFound: no recurring job has this id.
        """

    async def resume_recurring(self, recurring_id: str) -> None:
        """Schedule again from the next fire time after now; paused ticks are not caught up.

        Raises:
            RecurringJobNotFound: no recurring job has this id.
        """

    async def delete(self, job_id: JobId) -> None:
        """Move a job to `deleted`; a running job is cancelled cooperatively.

        Deleting a deleted job does nothing.

        Raises:
            JobNotFound: no job has this id.
        """

    async def requeue(self, job_id: JobId) -> None:
        """Enqueue a job again now, whatever its state, unless it is processing.

        Raises:
            JobNotFound: no job has this id.
            InvalidTransition: the job is processing.
        """

    async def get(self, job_id: JobId) -> JobView:
        """Return the job's state, history, attempts, error, progress and log lines.

        Raises:
            JobNotFound: no job has this id.
        """

    async def wait(
        self,
        job_id: JobId,
        *,
        timeout: dt.timedelta | float | None = None,  # noqa: ASYNC109 (as the sync port's)
    ) -> JobView:
        """Wait until the job is succeeded, failed or deleted and return its view then.

        Wakes when this process finishes the job, and otherwise looks again at growing
        intervals (at most a second apart), so it never polls storage in a tight loop.

        Raises:
            JobNotFound: no job has this id.
            WaitTimedOut: the job was not final after `timeout` (seconds, or a timedelta).
        """

    async def get_recurring(self, recurring_id: str) -> RecurringView:
        """Raises RecurringJobNotFound when no recurring job has this id."""

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringView]:
        """Recurring jobs ordered by id: those after the id `after` (all without it), at
        most `limit` of them (all without it)."""

    async def get_batch(self, batch_id: BatchId) -> BatchView:
        """Raises BatchNotFound when no batch has this id."""
