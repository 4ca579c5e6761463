"""The engine-backed `JobService`: every call becomes a job record handed to the store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

from application.jobs import (
    Batch,
    BatchId,
    BatchNotFound,
    BatchView,
    ContinueOn,
    Cron,
    InvalidArguments,
    InvalidSchedule,
    InvalidTransition,
    JobId,
    JobNotFound,
    JobOptions,
    JobService,
    JobState,
    JobView,
    RecurringJobNotFound,
    RecurringView,
    RetryPolicy,
)
from infrastructure.jobs import telemetry
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.cron import next_fire
from infrastructure.jobs.engine.handlers import HandlerRegistry
from infrastructure.jobs.engine.model import Job, NewBatch, RecurringJob, Tick
from infrastructure.jobs.engine.store import JobStore

logger = logging.getLogger(__name__)

DEFAULT_PAYLOAD_LIMIT = 64 * 1024


class EngineJobService:
    """`JobService` over a `JobStore`; the memory and SQL adapters differ only in the store."""

    def __init__(
        self,
        store: JobStore,
        registry: HandlerRegistry,
        clock: Clock,
        *,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        options: JobOptions | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._payload_limit = payload_limit
        self._options = options or JobOptions()

    def options(
        self,
        *,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: dt.timedelta | None = None,
        unique_key: str | None = None,
        continue_on: ContinueOn | None = None,
        session: object | None = None,
    ) -> JobService:
        current = self._options
        merged = JobOptions(
            queue=current.queue if queue is None else queue,
            retry=current.retry if retry is None else retry,
            timeout=current.timeout if timeout is None else timeout,
            unique_key=current.unique_key if unique_key is None else unique_key,
            continue_on=current.continue_on if continue_on is None else continue_on,
            session=current.session if session is None else session,
        )
        return EngineJobService(
            self._store,
            self._registry,
            self._clock,
            payload_limit=self._payload_limit,
            options=merged,
        )

    # --- creating jobs -----------------------------------------------------------------------
    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        job = self.build(handler, args, kwargs, state=JobState.ENQUEUED, reason="enqueued")
        return await self._create_one(job, "enqueue")

    async def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        run_at = self._resolve_when(when)
        job = self.build(handler, args, kwargs, state=JobState.SCHEDULED, reason="scheduled")
        return await self._create_one(dataclasses.replace(job, run_at=run_at), "schedule")

    async def continue_with(
        self, parent: JobId, handler: Callable[..., object], /, *args: Any, **kwargs: Any
    ) -> JobId:
        job = self.build(handler, args, kwargs, state=JobState.AWAITING, reason="awaiting parent")
        return await self._create_one(dataclasses.replace(job, parent_id=parent), "continue")

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        if self._options.unique_key is not None:
            raise InvalidArguments(
                "a unique key applies to one job, not to the jobs of a batch",
                argument="unique_key",
            )
        collected = _CollectingBatch(self)
        yield collected
        if collected.jobs or collected.continuation:
            await self._create_batch(collected)
            logger.info(
                "batch %s created with %d jobs",
                collected.id,
                len(collected.jobs),
                extra={"action": "batch_created", "batch_id": str(collected.id)},
            )

    def build(
        self,
        handler: Callable[..., object],
        args: Sequence[object],
        kwargs: Mapping[str, object],
        *,
        state: JobState,
        reason: str,
        batch_id: BatchId | None = None,
    ) -> Job:
        """A job record for `handler(*args, **kwargs)` with these options, checked."""
        definition = self._registry.resolve(handler)
        json_args, json_kwargs = definition.encode(args, kwargs, self._payload_limit)
        options = self._options
        return Job(
            id=JobId(uuid4()),
            handler=definition.name,
            args=json_args,
            kwargs=json_kwargs,
            queue=options.queue or definition.options.queue,
            state=state,
            created_at=self._clock.now(),
            retry=options.retry or definition.options.retry,
            timeout=options.timeout or definition.options.timeout,
            unique_key=options.unique_key,
            continue_on=options.continue_on,
            batch_id=batch_id,
            reason=reason,
        )

    async def _create_batch(self, collected: _CollectingBatch) -> None:
        with telemetry.producing("enqueue batch") as carrier:
            jobs = [telemetry.traced(job, carrier) for job in collected.jobs]
            continuation = collected.continuation
            if continuation is not None:
                continuation = telemetry.traced(continuation, carrier)
            new_batch = NewBatch(id=collected.id, continuation=continuation)
            await self._store.create(
                jobs, now=self._clock.now(), batch=new_batch, session=self._options.session
            )
        # a batch has no unique keys, so every job was created
        for job in [*jobs, continuation] if continuation else jobs:
            telemetry.created(job)

    async def _create_one(self, job: Job, operation: str) -> JobId:
        with telemetry.producing(f"{operation} {job.handler}", queue=job.queue) as carrier:
            job = telemetry.traced(job, carrier)
            [job_id] = await self._store.create(
                [job], now=self._clock.now(), session=self._options.session
            )
        if job_id == job.id:  # else an active job held its unique key
            telemetry.created(job)
        logger.info(
            "job %s %s: %s",
            job_id,
            job.reason,
            job.handler,
            extra={"action": "job_created", "job_id": str(job_id), "queue": job.queue},
        )
        return job_id

    def _resolve_when(self, when: dt.timedelta | dt.datetime) -> dt.datetime:
        if isinstance(when, dt.timedelta):
            if when < dt.timedelta(0):
                raise InvalidSchedule(f"a delay must not be negative, got {when}")
            return self._clock.now() + when
        if when.tzinfo is None or when.utcoffset() is None:
            raise InvalidSchedule(
                f"refusing naive datetime {when.isoformat()}: give a timezone-aware instant"
            )
        return when.astimezone(dt.UTC)

    # --- recurring jobs ----------------------------------------------------------------------
    async def add_or_update_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if not recurring_id or len(recurring_id) > 200:
            raise InvalidSchedule("a recurring job id is 1 to 200 characters")
        schedule = cron if isinstance(cron, Cron) else Cron(cron)
        now = self._clock.now()
        job = self.build(handler, args, kwargs, state=JobState.ENQUEUED, reason="")
        definition = RecurringJob(
            id=recurring_id,
            cron=schedule,
            handler=job.handler,
            args=job.args,
            kwargs=job.kwargs,
            queue=job.queue,
            retry=job.retry,
            timeout=job.timeout,
            next_run_at=next_fire(schedule, now),
        )
        await self._store.upsert_recurring(definition)

    async def remove_recurring(self, recurring_id: str) -> bool:
        return await self._store.remove_recurring(recurring_id)

    async def trigger_recurring(self, recurring_id: str) -> JobId:
        definition = await self._recurring(recurring_id)
        job = job_for_tick(definition, self._clock.now(), reason="triggered")
        return await self._create_one(job, "trigger")

    async def pause_recurring(self, recurring_id: str) -> None:
        if not await self._store.set_recurring_paused(recurring_id, True, next_run_at=None):
            raise RecurringJobNotFound(f"no recurring job {recurring_id!r}")

    async def resume_recurring(self, recurring_id: str) -> None:
        definition = await self._recurring(recurring_id)
        next_run = next_fire(definition.cron, self._clock.now())
        await self._store.set_recurring_paused(recurring_id, False, next_run_at=next_run)

    async def get_recurring(self, recurring_id: str) -> RecurringView:
        return recurring_view(await self._recurring(recurring_id))

    async def list_recurring(self) -> list[RecurringView]:
        return [recurring_view(r) for r in await self._store.list_recurring()]

    async def _recurring(self, recurring_id: str) -> RecurringJob:
        definition = await self._store.get_recurring(recurring_id)
        if definition is None:
            raise RecurringJobNotFound(f"no recurring job {recurring_id!r}")
        return definition

    # --- managing and reading jobs -----------------------------------------------------------
    async def delete(self, job_id: JobId) -> None:
        await self._store.change_state(
            job_id, JobState.DELETED, now=self._clock.now(), reason="deleted by request"
        )

    async def requeue(self, job_id: JobId) -> None:
        previous = await self._store.change_state(
            job_id,
            JobState.ENQUEUED,
            now=self._clock.now(),
            reason="requeued by request",
            unless=frozenset({JobState.PROCESSING}),
        )
        if previous is JobState.PROCESSING:
            raise InvalidTransition(f"job {job_id} is processing; it cannot be requeued")

    async def get(self, job_id: JobId) -> JobView:
        view = await self._store.get(job_id)
        if view is None:
            raise JobNotFound(f"no job {job_id}")
        return view

    async def get_batch(self, batch_id: BatchId) -> BatchView:
        view = await self._store.get_batch(batch_id)
        if view is None:
            raise BatchNotFound(f"no batch {batch_id}")
        return view


class _CollectingBatch:
    """Collects a batch's jobs until its block ends."""

    def __init__(self, client: EngineJobService) -> None:
        self.id = BatchId(uuid4())
        self.jobs: list[Job] = []
        self.continuation: Job | None = None
        self._client = client

    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        job = self._client.build(
            handler, args, kwargs, state=JobState.ENQUEUED, reason="enqueued", batch_id=self.id
        )
        self.jobs.append(job)
        return job.id

    def then(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        self.continuation = self._client.build(
            handler,
            args,
            kwargs,
            state=JobState.AWAITING,
            reason="awaiting batch",
            batch_id=self.id,
        )
        return self.continuation.id


def job_for_tick(definition: RecurringJob, now: dt.datetime, *, reason: str) -> Job:
    """The job a recurring job creates, at a tick or when triggered."""
    return Job(
        id=JobId(uuid4()),
        handler=definition.handler,
        args=definition.args,
        kwargs=definition.kwargs,
        queue=definition.queue,
        state=JobState.ENQUEUED,
        created_at=now,
        retry=definition.retry,
        timeout=definition.timeout,
        recurring_id=definition.id,
        reason=reason,
    )


def recurring_view(definition: RecurringJob) -> RecurringView:
    return RecurringView(
        id=definition.id,
        cron=definition.cron,
        handler=definition.handler,
        args=definition.args,
        kwargs=definition.kwargs,
        queue=definition.queue,
        paused=definition.paused,
        next_run_at=definition.next_run_at,
        last_run_at=definition.last_run_at,
        last_job_id=definition.last_job_id,
    )


__all__ = ["EngineJobService", "Tick", "job_for_tick", "recurring_view"]
