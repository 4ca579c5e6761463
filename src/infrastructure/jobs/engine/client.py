"""The engine-backed `JobService`: every call becomes a job record handed to the store."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

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
    JobState,
    JobView,
    JSONValue,
    RecurringJobNotFound,
    RecurringView,
    RetryPolicy,
    WaitTimedOut,
)
from infrastructure.jobs.clock import Clock
from infrastructure.jobs.cron import next_fire
from infrastructure.jobs.engine import states
from infrastructure.jobs.engine.batch import CollectingBatch
from infrastructure.jobs.engine.middleware import Enqueue, Middlewares
from infrastructure.jobs.engine.model import Job, NewBatch, RecurringJob
from infrastructure.jobs.engine.records import JobRecords
from infrastructure.jobs.engine.store import ClientStore
from infrastructure.jobs.engine.views import recurring_view
from infrastructure.jobs.handlers import HandlerDefinition, HandlerRegistry

DEFAULT_PAYLOAD_LIMIT = 64 * 1024
WAIT_FIRST_LOOK_SECONDS = 0.05
WAIT_LONGEST_LOOK_SECONDS = 1.0
"""`wait` looks again after these pauses (doubling) unless this process moved jobs sooner;
moves by other processes are only seen by looking."""


class EngineJobService:
    """`JobService` over a store; the memory and SQL adapters differ only in the store."""

    def __init__(
        self,
        store: ClientStore,
        registry: HandlerRegistry,
        clock: Clock,
        *,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        middleware: Middlewares | None = None,
        options: JobOptions | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._payload_limit = payload_limit
        self._middleware = middleware or Middlewares()
        self._options = options or JobOptions()
        self._records = JobRecords(registry, clock, self._options, payload_limit)

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
    ) -> EngineJobService:
        given: dict[str, Any] = {
            "queue": queue,
            "retry": retry,
            "timeout": timeout,
            "unique_key": unique_key,
            "continue_on": continue_on,
            "session": session,
            "expires_at": expires_at,
            "expires_in": expires_in,
            "idempotency_key": idempotency_key,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        merged = dataclasses.replace(self._options, **changes)
        return EngineJobService(
            self._store,
            self._registry,
            self._clock,
            payload_limit=self._payload_limit,
            middleware=self._middleware,
            options=merged,
        )

    # --- creating jobs -----------------------------------------------------------------------
    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        return await self.submit(*self._records.encoded(handler, args, kwargs))

    async def schedule(
        self,
        when: dt.timedelta | dt.datetime,
        handler: Callable[..., object],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        run_at = self._records.resolve_when(when)
        return await self.submit(*self._records.encoded(handler, args, kwargs), run_at=run_at)

    async def continue_with(
        self, parent: JobId, handler: Callable[..., object], /, *args: Any, **kwargs: Any
    ) -> JobId:
        return await self.submit(*self._records.encoded(handler, args, kwargs), parent=parent)

    async def submit(
        self,
        definition: HandlerDefinition,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
        *,
        run_at: dt.datetime | None = None,
        parent: JobId | None = None,
    ) -> JobId:
        """Create a job from arguments checked as JSON against the handler (by `encode`, or
        by `check_json` on the operators' path): now, at `run_at`, or after `parent`."""
        if parent is not None:
            state, reason, operation = JobState.AWAITING, "awaiting parent", "continue"
        elif run_at is not None:
            state, reason, operation = JobState.SCHEDULED, "scheduled", "schedule"
            run_at = self._records.resolve_when(run_at)
        else:
            state, reason, operation = JobState.ENQUEUED, "enqueued", "enqueue"
        job = self._records.job_of(
            definition, args, kwargs, state, reason, run_at=run_at, parent=parent
        )
        return await self._create_one(self._records.with_request(job, operation), operation)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        for option in ("unique_key", "idempotency_key"):
            if getattr(self._options, option) is not None:
                raise InvalidArguments(
                    f"a {option.replace('_', ' ')} applies to one job, not to a batch's jobs",
                    argument=option,
                )
        collected = CollectingBatch(self)
        yield collected
        if collected.jobs or collected.continuation:
            await self._create_batch(collected)

    def new_job(
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
        return self._records.job_of(
            *self._records.encoded(handler, args, kwargs), state, reason, batch_id
        )

    async def _create_batch(self, collected: CollectingBatch) -> None:
        continuation = [collected.continuation] if collected.continuation else []
        enqueue = Enqueue("batch", [*collected.jobs, *continuation])
        await self._store_new(enqueue, batch_id=collected.id, with_continuation=bool(continuation))

    async def _create_one(self, job: Job, operation: str) -> JobId:
        [job_id] = await self._store_new(Enqueue(operation, [job]))
        return job_id

    async def _store_new(
        self,
        enqueue: Enqueue,
        *,
        batch_id: BatchId | None = None,
        with_continuation: bool = False,
    ) -> list[JobId]:
        """Store new jobs (the last one a batch's continuation if so said), with the
        middleware's hooks around the write; return their ids."""
        ids: list[JobId] = []

        async def write(jobs: list[Job]) -> list[bool]:
            nonlocal ids
            batch = None
            if batch_id is not None:
                continuation = jobs[-1] if with_continuation else None
                jobs = jobs[:-1] if with_continuation else jobs
                batch = NewBatch(id=batch_id, continuation=continuation)
            ids = await self._store.create(
                jobs, now=self._clock.now(), batch=batch, session=self._options.session
            )
            created = [job_id == job.id for job_id, job in zip(ids, jobs, strict=True)]
            return created + [True] * with_continuation

        await self._middleware.enqueuing(enqueue, write)
        return ids

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
        await self.submit_recurring(
            recurring_id, cron, *self._records.encoded(handler, args, kwargs)
        )

    async def submit_recurring(
        self,
        recurring_id: str,
        cron: Cron | str,
        definition: HandlerDefinition,
        args: list[JSONValue],
        kwargs: dict[str, JSONValue],
    ) -> None:
        """`add_or_update_recurring` with arguments already checked as JSON."""
        if not recurring_id or len(recurring_id) > 200:
            raise InvalidSchedule("a recurring job id is 1 to 200 characters")
        schedule = cron if isinstance(cron, Cron) else Cron(cron)
        job = self._records.job_of(definition, args, kwargs, JobState.ENQUEUED, "")
        recurring = RecurringJob(
            id=recurring_id,
            cron=schedule,
            handler=job.handler,
            args=job.args,
            kwargs=job.kwargs,
            queue=job.queue,
            retry=job.retry,
            timeout=job.timeout,
            next_run_at=next_fire(schedule, self._clock.now()),
        )
        await self._store.upsert_recurring(recurring)

    async def remove_recurring(self, recurring_id: str) -> bool:
        return await self._store.remove_recurring(recurring_id)

    async def trigger_recurring(self, recurring_id: str) -> JobId:
        definition = await self._recurring(recurring_id)
        job = definition.new_job(self._clock.now(), reason="triggered")
        return await self._create_one(self._records.with_request(job, "trigger"), "trigger")

    async def pause_recurring(self, recurring_id: str) -> None:
        if not await self._store.set_recurring_paused(recurring_id, True, next_run_at=None):
            raise RecurringJobNotFound(f"no recurring job {recurring_id!r}")

    async def resume_recurring(self, recurring_id: str) -> None:
        definition = await self._recurring(recurring_id)
        next_run = next_fire(definition.cron, self._clock.now())
        await self._store.set_recurring_paused(recurring_id, False, next_run_at=next_run)

    async def get_recurring(self, recurring_id: str) -> RecurringView:
        return recurring_view(await self._recurring(recurring_id))

    async def list_recurring(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[RecurringView]:
        found = await self._store.list_recurring(after=after, limit=limit)
        return [recurring_view(r) for r in found]

    async def _recurring(self, recurring_id: str) -> RecurringJob:
        definition = await self._store.get_recurring(recurring_id)
        if definition is None:
            raise RecurringJobNotFound(f"no recurring job {recurring_id!r}")
        return definition

    # --- managing and reading jobs -----------------------------------------------------------
    async def delete(self, job_id: JobId) -> None:
        await self._store.change_state(
            job_id,
            JobState.DELETED,
            now=self._clock.now(),
            reason="deleted by request",
            elect=self._middleware.elect_move,
        )

    async def requeue(self, job_id: JobId) -> None:
        previous = await self._store.change_state(
            job_id,
            JobState.ENQUEUED,
            now=self._clock.now(),
            reason="requeued by request",
            unless=frozenset({JobState.PROCESSING}),
            elect=self._middleware.elect_move,
        )
        if previous is JobState.PROCESSING:
            raise InvalidTransition(f"job {job_id} is processing; it cannot be requeued")

    async def get(self, job_id: JobId) -> JobView:
        view = await self._store.get(job_id)
        if view is None:
            raise JobNotFound(f"no job {job_id}")
        if view.state in states.WAITING_STATES:
            servers = await self._store.list_servers()
            unserved = not any(view.queue in server.queues for server in servers)
            return dataclasses.replace(view, queue_unserved=unserved)
        return view

    async def wait(
        self,
        job_id: JobId,
        *,
        timeout: dt.timedelta | float | None = None,  # noqa: ASYNC109 (as the sync port's)
    ) -> JobView:
        seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
        changes, pause = self._store.job_changes, WAIT_FIRST_LOOK_SECONDS
        try:
            async with asyncio.timeout(seconds):
                while True:
                    seen = changes.generation
                    view = await self.get(job_id)
                    if view.state.is_final:
                        return view
                    await changes.wait(seen, pause)
                    pause = min(pause * 2, WAIT_LONGEST_LOOK_SECONDS)
        except TimeoutError:
            raise WaitTimedOut(f"job {job_id} was not final after {seconds:g} s") from None

    async def get_batch(self, batch_id: BatchId) -> BatchView:
        view = await self._store.get_batch(batch_id)
        if view is None:
            raise BatchNotFound(f"no batch {batch_id}")
        return view
