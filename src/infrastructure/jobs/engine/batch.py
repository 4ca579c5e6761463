"""The batch a `JobService.batch()` block fills: its jobs are created when the block ends."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from uuid import uuid4

from application.jobs import BatchId, JobId, JobState
from infrastructure.jobs.engine.model import Job


class JobFactory(Protocol):
    def new_job(
        self,
        handler: Callable[..., object],
        args: Sequence[object],
        kwargs: Mapping[str, object],
        *,
        state: JobState,
        reason: str,
        batch_id: BatchId | None = None,
    ) -> Job: ...


class CollectingBatch:
    """Collects a batch's jobs, checked as they come, until its block ends."""

    def __init__(self, factory: JobFactory) -> None:
        self.id = BatchId(uuid4())
        self.jobs: list[Job] = []
        self.continuation: Job | None = None
        self._factory = factory

    async def enqueue(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        job = self._factory.new_job(
            handler, args, kwargs, state=JobState.ENQUEUED, reason="enqueued", batch_id=self.id
        )
        self.jobs.append(job)
        return job.id

    def then(self, handler: Callable[..., object], /, *args: Any, **kwargs: Any) -> JobId:
        self.continuation = self._factory.new_job(
            handler,
            args,
            kwargs,
            state=JobState.AWAITING,
            reason="awaiting batch",
            batch_id=self.id,
        )
        return self.continuation.id
